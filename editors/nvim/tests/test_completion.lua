-- Scenarios against the real `tandem` binary with its embedded backend.
local H = require("helpers")

local T = {}
local child -- shared by the scenarios in this file (one server, one index)

local TYPED = "    router.get(paths::ORDERS,"
local FIRST = " handlers::list_orders);"

local function first_line(s)
  return (s:match("^[^\n]*"))
end

local function line(n)
  return child:lua("return vim.api.nvim_buf_get_lines(0, ...)", n - 1, n, false)[1]
end

local function wait_no_ghost(what)
  if not H.poll(2000, function() return child:extmark_count() == 0 end) then
    child:fail(what .. ": ghost text still shown")
  end
end

table.insert(T, { "setup: server attaches and reports its status", function()
  child = H.start()
  vim.wait(200)
  child:assert_eq({}, child:lua("return _G.tandem_test_messages"), "messages from the server at start-up")
  local s = child:lua("local t = require('tandem'); return t.status[t.get_client().id]")
  child:assert_eq("embedded", s.backend, "tandem/status backend")
  child:assert_eq("Comment", child:lua([[
    return vim.api.nvim_get_hl(0, { name = "TandemSuggestion" }).link
  ]]), "TandemSuggestion link")
end })

table.insert(T, { "typing shows ghost text (virt_text inline + virt_lines)", function()
  local g = child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:assert_eq(FIRST, first_line(g.text), "first ghost line")
  child:assert_eq(#TYPED, g.col, "ghost column")
  child:assert_eq("inline", g.pos, "virt_text_pos")
  child:assert_eq("TandemSuggestion", g.hl, "ghost highlight")
  child:assert_eq(1, g.count, "number of extmarks")
  child:assert_eq(TYPED, line(7), "buffer line is unchanged by ghost text")
  -- The cursor is drawn right after the typed text, before the ghost text (not after it).
  child:assert_eq(#TYPED + 1, child:lua("return vim.fn.wincol()"), "screen column of the cursor")
end })

table.insert(T, { "accept (<Tab>) inserts the suggestion and moves the cursor", function()
  local g = child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:input("<Tab>")
  local want = vim.split(TYPED .. g.text, "\n", { plain = true })
  if not H.poll(2000, function()
    return vim.deep_equal(want, child:lua("return vim.api.nvim_buf_get_lines(0, 6, ..., false)", 6 + #want))
  end) then
    child:fail("accept: expected lines 7.. to be " .. vim.inspect(want))
  end
  child:assert_eq(TYPED .. FIRST, line(7), "accepted line")
  child:assert_eq("i", child:mode(), "still in insert mode")
  local last = want[#want]
  child:assert_eq({ 6 + #want, #last }, child:cursor(), "cursor at the end of the inserted text")
end })

table.insert(T, { "dismiss (<C-]>) clears the ghost text", function()
  child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:input("<C-]>")
  wait_no_ghost("dismiss")
  child:assert_eq(TYPED, line(7), "buffer after dismiss")
  child:assert_eq("i", child:mode(), "still in insert mode")
end })

table.insert(T, { "<Esc> (InsertLeave) clears the ghost text", function()
  child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:input("<Esc>")
  wait_no_ghost("InsertLeave")
end })

table.insert(T, { "accept word (<C-Right>) inserts one word at a time", function()
  child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:input("<C-Right>")
  if not H.poll(2000, function() return line(7) == TYPED .. " handlers" end) then
    child:fail("accept word: expected line 7 to be " .. vim.inspect(TYPED .. " handlers"))
  end
  local g = child:ghost()
  if not g or first_line(g.text) ~= "::list_orders);" then
    child:fail("accept word: the rest should stay on screen as `::list_orders);`")
  end
  child:assert_eq({ 7, #(TYPED .. " handlers") }, child:cursor(), "cursor after accept word")
  child:input("<C-Right>")
  if not H.poll(2000, function() return line(7) == TYPED .. " handlers::" end) then
    child:fail("second accept word: expected " .. vim.inspect(TYPED .. " handlers::"))
  end
  child:input("<C-Right>")
  if not H.poll(2000, function() return line(7) == TYPED .. " handlers::list_orders" end) then
    child:fail("third accept word: expected " .. vim.inspect(TYPED .. " handlers::list_orders"))
  end
end })

table.insert(T, { "accept line (<C-Down>) inserts the first line only", function()
  local g = child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:input("<C-Down>")
  if not H.poll(2000, function() return line(7) == TYPED .. FIRST end) then
    child:fail("accept line: expected line 7 to be " .. vim.inspect(TYPED .. FIRST))
  end
  child:assert_eq("    router", line(8), "line after the accepted one is untouched")
  child:assert_eq({ 7, #(TYPED .. FIRST) }, child:cursor(), "cursor after accept line")
  local rest = g.text:match("^[^\n]*(\n.*)$")
  if rest then
    local g2 = child:ghost()
    if not g2 or g2.text ~= rest then
      child:fail("accept line: the remaining lines should stay on screen: " .. vim.inspect(rest))
    end
  end
end })

table.insert(T, { "manual trigger (triggerKind 1) with auto-trigger off", function()
  child:lua("require('tandem.suggestion').clear(); require('tandem').config.auto_trigger = false")
  local ok, err = pcall(function()
    child:reset(6)
    child:input("o" .. TYPED:gsub("^%s+", ""))
    H.poll(2000, function() return line(7) == TYPED end)
    -- No automatic request: nothing may appear by itself.
    vim.wait(400)
    child:assert_eq(0, child:extmark_count(), "extmarks without a trigger")
    local g = child:type_and_wait(TYPED:gsub("^%s+", ""), 10000, true)
    child:assert_eq(FIRST, first_line(g.text), "first ghost line after manual trigger")
  end)
  child:lua("require('tandem').config.auto_trigger = true")
  if not ok then
    error(err, 0)
  end
end })

table.insert(T, { "keys fall back to their normal behaviour without a suggestion", function()
  child:reset(6)
  child:lua("require('tandem').enabled = false; vim.bo.expandtab = false; vim.bo.softtabstop = 0")
  child:input("o<Tab>x")
  local ok = H.poll(2000, function() return (line(7) or ""):match("^ *\tx$") ~= nil end)
  child:lua("require('tandem').enabled = true; vim.bo.expandtab = true; vim.bo.softtabstop = 4")
  if not ok then
    child:fail("<Tab> without a suggestion should insert a tab")
  end
end })

table.insert(T, { "next/prev cycle through several items", function()
  child:reset(6)
  child:input("o")
  H.poll(2000, function() return child:mode() == "i" end)
  child:lua([[
    local s = require("tandem.suggestion")
    local c = require("tandem").get_client()
    local pos = vim.api.nvim_win_get_cursor(0)
    local r = { start = { line = pos[1] - 1, character = pos[2] }, ["end"] = { line = pos[1] - 1, character = pos[2] } }
    s._show(0, c, {
      { insertText = "one()", range = r },
      { insertText = { value = "two()\nthree()" }, range = r },
    }, 1)
  ]])
  child:assert_eq("one()", (child:ghost() or {}).text, "first item")
  child:input("<M-]>")
  if not H.poll(2000, function() return (child:ghost() or {}).text == "two()\nthree()" end) then
    child:fail("<M-]> should show the second item (with a virt_line)")
  end
  child:input("<M-[>")
  if not H.poll(2000, function() return (child:ghost() or {}).text == "one()" end) then
    child:fail("<M-[> should show the first item again")
  end
  child:input("<M-]><Tab>")
  if not H.poll(2000, function() return line(7) == "    two()" and line(8) == "three()" end) then
    child:fail("accepting the second item should insert two lines")
  end
end })

table.insert(T, { ":Tandem status, toggle and getStatus", function()
  child:input("<Esc>")
  local msgs = child:lua([[
    local out = {}
    local orig = vim.notify
    vim.notify = function(m) table.insert(out, m) end
    vim.cmd("Tandem status")
    vim.cmd("Tandem toggle")
    vim.cmd("Tandem toggle")
    vim.notify = orig
    return out
  ]])
  if not (msgs[1] or ""):find("embedded", 1, true) then
    child:fail(":Tandem status should name the backend, got " .. vim.inspect(msgs))
  end
  child:assert_eq("tandem: completions disabled", msgs[2], "first toggle")
  child:assert_eq("tandem: completions enabled", msgs[3], "second toggle")
  local res = child:lua([[
    local c = require("tandem").get_client()
    local r = require("tandem.compat").request_sync(c, "tandem/getStatus", vim.NIL, 3000)
    return r and r.result or r
  ]])
  if type(res) ~= "table" or res.backend ~= "embedded" or not res.state then
    child:fail("tandem/getStatus: " .. vim.inspect(res))
  end
end })

table.insert(T, { ":checkhealth tandem", function()
  local text = child:lua([[
    vim.cmd("checkhealth tandem")
    return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  ]])
  for _, want in ipairs({ "tandem 0.", "client %d+ running", "backend status: %a+ backend=embedded", "Neovim 0%.1%d" }) do
    if not text:find(want) then
      error("checkhealth output lacks " .. want .. ":\n" .. text, 0)
    end
  end
  if text:find("ERROR") then
    error("checkhealth reports an error:\n" .. text, 0)
  end
  child:lua("vim.cmd('tabclose')")
end })

table.insert(T, { ":Tandem restart starts a new client", function()
  local old = child:lua("return require('tandem').get_client().id")
  child:lua("vim.cmd('Tandem restart')")
  local new = H.poll(10000, function()
    local id = child:lua([[
      local c = require("tandem").get_client()
      return c and c.initialized and c.id or false
    ]])
    return id and id ~= old and id or nil
  end)
  if not new then
    child:fail(":Tandem restart: no new client within 10 s (old " .. old .. ")")
  end
  child:assert_eq(1, #child:lua("return vim.tbl_map(function(c) return c.id end, require('tandem').get_clients())"), "one client")
  local g = child:type_and_wait(TYPED:gsub("^%s+", ""))
  child:assert_eq(FIRST, first_line(g.text), "ghost text after restart")
end })

table.insert(T, { "settings reach the server (init_options + didChangeConfiguration)", function()
  local c2 = H.start({ setup = { settings = { completion = { enabled = false } } } })
  local ok, err = pcall(function()
    local st = H.poll(5000, function()
      local s = c2:lua("local t = require('tandem'); return t.status[t.get_client().id]")
      return s ~= vim.NIL and s.state == "disabled" and s or nil
    end)
    if not st then
      c2:fail("with completion.enabled = false the status should become `disabled`")
    end
    c2:assert_eq({}, c2:lua("return _G.tandem_test_messages"), "messages from the server")
  end)
  c2:close()
  if not ok then
    error(err, 0)
  end
end })

T.teardown = function()
  if child then
    child:close()
  end
end

return T
