-- Test harness: drives a child Neovim (`nvim --embed --headless --clean`) over RPC, so keys go
-- through the child's real input loop (insert mode, mappings, autocmds) while this process polls
-- its state with bounded waits.
local H = {}

local this = debug.getinfo(1, "S").source:sub(2)
H.tests_dir = vim.fs.dirname(vim.fn.fnamemodify(this, ":p"))
H.plugin_dir = vim.fs.dirname(H.tests_dir)
H.repo_root = vim.fs.dirname(vim.fs.dirname(H.plugin_dir))

function H.tandem_bin()
  local bin = os.getenv("TANDEM_BIN")
  if not bin or bin == "" then
    bin = H.repo_root .. "/target/debug/tandem"
  end
  bin = vim.fn.fnamemodify(bin, ":p")
  if vim.fn.executable(bin) ~= 1 then
    error("tandem binary not found or not executable: " .. bin .. " (set TANDEM_BIN or run `cargo build -p tandem`)", 0)
  end
  return bin
end

-- A workspace whose files repeat an obvious pattern for the embedded model.
H.routes_rs = {
  "use crate::handlers::{Request, Response};",
  "",
  "pub struct Router {",
  "    routes: Vec<(&'static str, fn(&Request) -> Response)>,",
  "}",
  "",
  "impl Router {",
  "    pub fn get(&mut self, path: &'static str, handler: fn(&Request) -> Response) {",
  "        self.routes.push((path, handler));",
  "    }",
  "}",
  "",
  "pub fn routes() -> Router {",
  "    let mut router = Router { routes: Vec::new() };",
  "    router.get(paths::USERS, handlers::list_users);",
  "    router.get(paths::INVOICES, handlers::list_invoices);",
  "    router.get(paths::PAYMENTS, handlers::list_payments);",
  "    router",
  "}",
}

H.api_rs = {
  "use crate::routes::Router;",
  "",
  "pub fn api_routes() -> Router {",
  "    let mut router = Router { routes: Vec::new() };",
  "    router.get(paths::USERS, handlers::list_users);",
  "    router.get(paths::INVOICES, handlers::list_invoices);",
  "    router",
  "}",
}

function H.make_workspace()
  local dir = vim.fn.tempname() .. "-tandem-ws"
  vim.fn.mkdir(dir .. "/src", "p")
  vim.fn.writefile({}, dir .. "/tandem.toml")
  vim.fn.writefile(H.routes_rs, dir .. "/src/routes.rs")
  vim.fn.writefile(H.api_rs, dir .. "/src/api.rs")
  vim.fn.writefile({ "fn main() {}" }, dir .. "/src/main.rs")
  return dir
end

--- Poll `fn` (returns truthy when done) for up to `timeout_ms`; returns its value or nil.
function H.poll(timeout_ms, fn, interval)
  local deadline = vim.uv.hrtime() + timeout_ms * 1e6
  while true do
    local v = fn()
    if v then
      return v
    end
    if vim.uv.hrtime() > deadline then
      return nil
    end
    vim.wait(interval or 20)
  end
end

local Child = {}
Child.__index = Child

function H.new_child(opts)
  opts = opts or {}
  local state = vim.fn.tempname() .. "-nvim-state"
  vim.fn.mkdir(state, "p")
  -- The server's symbol cache goes there too, not into the real ~/.cache.
  local env = { XDG_STATE_HOME = state, XDG_CACHE_HOME = state .. "/cache" }
  local chan = vim.fn.jobstart({ vim.v.progpath, "--embed", "--headless", "--clean", "-n" }, {
    rpc = true,
    env = env,
  })
  if chan <= 0 then
    error("could not start child nvim: " .. vim.v.progpath, 0)
  end
  local self = setmetatable({ chan = chan, state_dir = state }, Child)
  self:lua([[
    vim.opt.rtp:prepend(...)
    vim.o.swapfile = false
    vim.o.shadafile = "NONE"
    vim.cmd("runtime plugin/tandem.lua")
  ]], H.plugin_dir)
  return self
end

function Child:lua(code, ...)
  return vim.rpcrequest(self.chan, "nvim_exec_lua", code, { ... })
end

function Child:input(keys)
  return vim.rpcrequest(self.chan, "nvim_input", keys)
end

function Child:mode()
  return vim.rpcrequest(self.chan, "nvim_get_mode").mode
end

function Child:lines()
  return self:lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")
end

function Child:cursor()
  return self:lua("return vim.api.nvim_win_get_cursor(0)")
end

--- Ghost text as { row, col, text } (first line from virt_text, the rest from virt_lines,
--- joined by "\n"), or nil when there is no extmark.
function Child:ghost()
  local g = self:lua([[
    local ns = vim.api.nvim_get_namespaces().tandem
    if not ns then return nil end
    local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
    if #marks == 0 then return nil end
    local m = marks[1]
    local d = m[4]
    local parts, hl = {}, nil
    for _, chunk in ipairs(d.virt_text or {}) do
      table.insert(parts, chunk[1]); hl = chunk[2]
    end
    local lines = { table.concat(parts) }
    for _, vl in ipairs(d.virt_lines or {}) do
      local t = {}
      for _, chunk in ipairs(vl) do table.insert(t, chunk[1]); hl = hl or chunk[2] end
      table.insert(lines, table.concat(t))
    end
    return { row = m[2], col = m[3], text = table.concat(lines, "\n"), count = #marks,
             hl = hl, pos = d.virt_text_pos }
  ]])
  if g == vim.NIL then
    return nil
  end
  return g
end

function Child:extmark_count()
  return self:lua([[
    local ns = vim.api.nvim_get_namespaces().tandem
    if not ns then return 0 end
    return #vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, {})
  ]])
end

function Child:describe()
  local ok, lines = pcall(self.lines, self)
  local ok2, ghost = pcall(self.ghost, self)
  local ok3, cur = pcall(self.cursor, self)
  local ok4, mode = pcall(self.mode, self)
  local ok5, status = pcall(self.lua, self, [[
    local t = require("tandem")
    local c = t.get_client()
    return { client = c and c.id or false, status = c and t.status[c.id] or false }
  ]])
  return ("buffer:\n%s\ncursor: %s  mode: %s\nextmarks: %s\nclient/status: %s"):format(
    ok and table.concat(vim.tbl_map(function(l) return "  |" .. l end, lines), "\n") or tostring(lines),
    ok3 and vim.inspect(cur) or tostring(cur),
    ok4 and mode or tostring(mode),
    ok2 and vim.inspect(ghost) or tostring(ghost),
    ok5 and vim.inspect(status) or tostring(status)
  )
end

function Child:close()
  pcall(vim.rpcrequest, self.chan, "nvim_exec_lua", [[
    for _, c in ipairs(vim.lsp.get_clients()) do require("tandem.compat").stop(c) end
    vim.wait(2000, function() return #vim.lsp.get_clients() == 0 end, 20)
  ]], {})
  pcall(vim.fn.jobstop, self.chan)
  vim.fn.jobwait({ self.chan }, 2000)
end

--- Fail with the child's state attached.
function Child:fail(msg)
  error(msg .. "\n" .. self:describe(), 0)
end

function Child:assert_eq(want, got, what)
  if not vim.deep_equal(want, got) then
    self:fail(("%s: expected %s, got %s"):format(what, vim.inspect(want), vim.inspect(got)))
  end
end

--- Start a child with the plugin set up on a fresh workspace and `src/api.rs` open, the server
--- attached and its first `tandem/status` received.
function H.start(opts)
  opts = opts or {}
  local ws = H.make_workspace()
  local child = H.new_child()
  child.ws = ws
  child:lua([[
    local bin, opts = ...
    -- Everything the server shows (window/showMessage) or the plugin reports.
    _G.tandem_test_messages = {}
    vim.notify = function(msg) table.insert(_G.tandem_test_messages, msg) end
    require("tandem").setup(vim.tbl_deep_extend("force", { cmd = { bin } }, opts))
    vim.cmd.edit(vim.fn.fnameescape(select(3, ...)))
    vim.bo.indentexpr = ""
    vim.bo.autoindent = true
  ]], H.tandem_bin(), opts.setup or vim.empty_dict(), ws .. "/src/api.rs")
  local ok = H.poll(10000, function()
    return child:lua([[
      local t = require("tandem")
      local c = t.get_client()
      return c ~= nil and c.initialized and t.status[c.id] ~= nil
    ]])
  end)
  if not ok then
    child:fail("the tandem server did not attach and send tandem/status within 10 s")
  end
  return child
end

--- Reset api.rs to its original text, put the cursor at the end of line `lnum` (1-based) in
--- normal mode.
function Child:reset(lnum)
  self:input("<Esc>")
  H.poll(2000, function() return self:mode() == "n" end)
  self:lua([[
    local lines, lnum = ...
    vim.api.nvim_buf_set_lines(0, 0, -1, false, lines)
    vim.api.nvim_win_set_cursor(0, { lnum, 0 })
  ]], H.api_rs, lnum)
end

--- Open a line below line 6 and type `text`; then wait for ghost text, retrying with a manual
--- trigger until `timeout_ms` (the server may still be indexing).
function Child:type_and_wait(text, timeout_ms, manual_only)
  self:reset(6)
  self:input("o" .. text:gsub("<", "<lt>"))
  local row = 6
  H.poll(2000, function()
    local l = self:lua("return vim.api.nvim_get_current_line()")
    return self:mode() == "i" and l:sub(-#text) == text
  end)
  local deadline = vim.uv.hrtime() + (timeout_ms or 10000) * 1e6
  local first = true
  while vim.uv.hrtime() < deadline do
    if manual_only or not first then
      self:lua("require('tandem').trigger()")
    end
    first = false
    local g = H.poll(1500, function()
      local g = self:ghost()
      return g and g.row == row and g or nil
    end)
    if g then
      return g
    end
  end
  self:fail(("no ghost text after typing %q within %d ms"):format(text, timeout_ms or 10000))
end

return H
