-- Runs every tests/test_*.lua (or the files given as arguments):
--   nvim --headless --clean -l editors/nvim/tests/run.lua [test_file.lua ...]
-- Prints one line per scenario and a closing "N passed, M failed"; exits non-zero on failure.
local this = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p")
local tests_dir = vim.fs.dirname(this)
package.path = tests_dir .. "/?.lua;" .. package.path

local files = {}
for _, a in ipairs(_G.arg or {}) do
  table.insert(files, vim.fn.fnamemodify(a, ":p"))
end
if #files == 0 then
  files = vim.fn.glob(tests_dir .. "/test_*.lua", false, true)
  table.sort(files)
end

local passed, failed = 0, 0
local failures = {}
for _, file in ipairs(files) do
  local ok, T = pcall(dofile, file)
  if not ok then
    failed = failed + 1
    table.insert(failures, file .. ": " .. tostring(T))
    io.stdout:write("FAIL load " .. file .. "\n" .. tostring(T) .. "\n")
  else
    local name = vim.fn.fnamemodify(file, ":t:r")
    local broken = false
    for _, case in ipairs(T) do
      local label = name .. ": " .. case[1]
      if broken then
        failed = failed + 1
        io.stdout:write("SKIP(FAIL) " .. label .. " (setup failed)\n")
      else
        local t0 = vim.uv.hrtime()
        local ok2, err = xpcall(case[2], function(e)
          return type(e) == "string" and e or vim.inspect(e)
        end)
        local ms = (vim.uv.hrtime() - t0) / 1e6
        if ok2 then
          passed = passed + 1
          io.stdout:write(("ok   %s (%d ms)\n"):format(label, ms))
        else
          failed = failed + 1
          table.insert(failures, label)
          io.stdout:write(("FAIL %s (%d ms)\n%s\n"):format(label, ms, err))
          if case[1]:match("^setup") then
            broken = true
          end
        end
      end
      io.stdout:flush()
    end
    if T.teardown then
      pcall(T.teardown)
    end
  end
end

if failed > 0 then
  io.stdout:write("\nFailed:\n  " .. table.concat(failures, "\n  ") .. "\n")
end
io.stdout:write(("%d passed, %d failed\n"):format(passed, failed))
io.stdout:flush()
os.exit(failed == 0 and 0 or 1)
