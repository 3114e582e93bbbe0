-- :checkhealth tandem
local M = {}

function M.check()
  local health = vim.health
  local tandem = require("tandem")
  local compat = require("tandem.compat")

  health.start("Neovim")
  local v = vim.version()
  local vs = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. vs .. " (0.10 and 0.11 are supported; 0.11 is tested)")
  else
    health.error("Neovim " .. vs .. " is too old: Tandem needs 0.10 or later")
  end

  health.start("Server binary")
  local cmd = tandem.config.cmd or { "tandem" }
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok(("`%s` found: %s"):format(exe, vim.fn.exepath(exe)))
    local out = vim.fn.system({ exe, "--version" })
    if vim.v.shell_error == 0 then
      health.ok("`" .. exe .. " --version`: " .. vim.trim(out))
    else
      health.warn("`" .. exe .. " --version` failed: " .. vim.trim(out))
    end
  else
    health.error(("`%s` not found or not executable"):format(exe), {
      "Install it with `cargo install --path crates/tandem` from the Tandem repository",
      "or set `cmd` in require('tandem').setup({ cmd = { '/path/to/tandem' } })",
    })
  end

  health.start("Client")
  if not tandem.enabled then
    health.warn("completions are toggled off (`:Tandem toggle`)")
  end
  local clients = tandem.get_clients()
  if #clients == 0 then
    health.warn("no tandem client is running", { "open a file (setup() attaches on FileType)" })
    return
  end
  for _, client in ipairs(clients) do
    health.ok(("client %d running, root %s, position encoding %s"):format(
      client.id,
      client.root_dir or "?",
      client.offset_encoding or "?"
    ))
    local resp = compat.request_sync(client, "tandem/getStatus", vim.NIL, 2000)
    if not resp then
      health.error("tandem/getStatus: no answer within 2 s")
    elseif resp.err then
      health.error("tandem/getStatus failed: " .. (resp.err.message or vim.inspect(resp.err)))
    else
      local s = resp.result or {}
      local text = "backend status: " .. tandem.format_status(s)
      if s.state == "ready" or s.state == "busy" then
        health.ok(text)
      elseif s.state == "disabled" then
        health.warn(text, { "completion.enabled is false in the configuration" })
      else
        health.error(text)
      end
    end
  end
end

return M
