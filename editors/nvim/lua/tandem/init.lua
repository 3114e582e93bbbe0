-- Tandem for Neovim: starts the `tandem` language server and shows its inline completions as
-- ghost text; its code actions come through vim.lsp.buf.code_action(), Refine's instruction
-- through vim.ui.input. Targets Neovim 0.10 and 0.11 (tested on 0.11).
local compat = require("tandem.compat")

local M = {}

M.defaults = {
  cmd = { "tandem" },
  settings = {},
  root_markers = { ".git", "tandem.toml" },
  filetypes = nil, -- nil: every file buffer
  debounce_ms = 75,
  auto_trigger = true,
  keymaps = {
    accept = "<Tab>",
    accept_word = "<C-Right>",
    accept_line = "<C-Down>",
    next = "<M-]>",
    prev = "<M-[>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
  },
}

M.config = vim.deepcopy(M.defaults)
M.enabled = true
--- Last `tandem/status` params, by client id.
M.status = {}

local augroup = vim.api.nvim_create_augroup("tandem", { clear = true })

function M.get_clients(bufnr)
  local filter = { name = "tandem" }
  if bufnr then
    filter.bufnr = bufnr
  end
  return vim.lsp.get_clients(filter)
end

function M.get_client(bufnr)
  return M.get_clients(bufnr or vim.api.nvim_get_current_buf())[1]
end

local function filetype_ok(bufnr)
  local fts = M.config.filetypes
  if fts == nil then
    return true
  end
  return vim.tbl_contains(fts, vim.bo[bufnr].filetype)
end

local function root_for(bufnr)
  local root = vim.fs.root(bufnr, M.config.root_markers)
  if root then
    return root
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name ~= "" then
    return vim.fs.dirname(name)
  end
  return vim.uv.cwd()
end

local handlers = {
  ["tandem/status"] = function(_, params, ctx)
    M.status[ctx.client_id] = params
    vim.api.nvim_exec_autocmds("User", { pattern = "TandemStatus", modeline = false, data = params })
  end,
}

--- Start (or reuse) the client for this buffer's root and attach it.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  if vim.api.nvim_buf_get_name(bufnr) == "" or not filetype_ok(bufnr) then
    return nil
  end
  local settings = M.config.settings
  if type(settings) ~= "table" or next(settings) == nil then
    settings = nil -- an empty Lua table would be sent as a JSON array
  end
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.textDocument = capabilities.textDocument or {}
  capabilities.textDocument.inlineCompletion = { dynamicRegistration = false }
  return vim.lsp.start({
    name = "tandem",
    cmd = M.config.cmd,
    root_dir = root_for(bufnr),
    init_options = settings,
    -- Neovim sends non-empty `settings` as workspace/didChangeConfiguration after init.
    settings = settings or vim.empty_dict(),
    capabilities = capabilities,
    handlers = handlers,
    -- Refine's instruction, asked with vim.ui.input (lua/tandem/actions.lua).
    commands = require("tandem.actions").commands,
  }, { bufnr = bufnr })
end

local function echo(msg, level)
  vim.notify("tandem: " .. msg, level or vim.log.levels.INFO)
end

local function format_status(s)
  if type(s) ~= "table" then
    return "unknown"
  end
  local parts = { s.state or "?" }
  if s.backend then
    table.insert(parts, "backend=" .. s.backend)
  end
  if s.model and s.model ~= vim.NIL then
    table.insert(parts, "model=" .. s.model)
  end
  if s.message and s.message ~= vim.NIL then
    table.insert(parts, "(" .. s.message .. ")")
  end
  return table.concat(parts, " ")
end
M.format_status = format_status

--- Ask the server for its status (`tandem/getStatus`); `cb(err, status)`.
function M.get_status(client, cb)
  compat.request(client, "tandem/getStatus", vim.NIL, function(err, result)
    if result then
      M.status[client.id] = result
    end
    cb(err, result)
  end)
end

function M.show_status()
  local clients = M.get_clients()
  if #clients == 0 then
    echo("no client running (enabled=" .. tostring(M.enabled) .. ")")
    return
  end
  for _, client in ipairs(clients) do
    local prefix = ("client %d (%s): "):format(client.id, client.root_dir or "?")
    local s = M.status[client.id]
    if s then
      echo(prefix .. format_status(s) .. (M.enabled and "" or " [toggled off]"))
    else
      M.get_status(client, function(err, result)
        if err then
          echo(prefix .. "tandem/getStatus failed: " .. (err.message or vim.inspect(err)), vim.log.levels.WARN)
        else
          echo(prefix .. format_status(result))
        end
      end)
    end
  end
end

function M.toggle()
  M.enabled = not M.enabled
  if not M.enabled then
    require("tandem.suggestion").clear()
  end
  echo(M.enabled and "completions enabled" or "completions disabled")
end

function M.restart()
  local clients = M.get_clients()
  local bufs = {}
  for _, client in ipairs(clients) do
    for buf in pairs(client.attached_buffers or {}) do
      bufs[buf] = true
    end
    compat.stop(client)
  end
  local waited = 0
  local function again()
    local all_stopped = true
    for _, client in ipairs(clients) do
      if not compat.is_stopped(client) then
        all_stopped = false
      end
    end
    if not all_stopped and waited < 3000 then
      waited = waited + 50
      vim.defer_fn(again, 50)
      return
    end
    if not all_stopped then
      for _, client in ipairs(clients) do
        compat.stop(client, true)
      end
    end
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and (bufs[buf] or next(bufs) == nil) then
        M.attach(buf)
      end
    end
    echo("restarted")
  end
  vim.defer_fn(again, 0)
end

function M.open_log()
  vim.cmd("tabnew " .. vim.fn.fnameescape(vim.lsp.get_log_path()))
end

-- Suggestion API, re-exported for mappings and scripts.
function M.trigger()
  require("tandem.suggestion").trigger(1)
end
function M.accept()
  return require("tandem.suggestion").accept()
end
function M.accept_word()
  return require("tandem.suggestion").accept_word()
end
function M.accept_line()
  return require("tandem.suggestion").accept_line()
end
function M.next()
  return require("tandem.suggestion").cycle(1)
end
function M.prev()
  return require("tandem.suggestion").cycle(-1)
end
function M.dismiss()
  return require("tandem.suggestion").dismiss()
end

local subcommands = {
  status = M.show_status,
  toggle = M.toggle,
  restart = M.restart,
  log = M.open_log,
  trigger = M.trigger,
}

function M.command(args)
  local sub = args.fargs[1] or "status"
  local fn = subcommands[sub]
  if not fn then
    echo("unknown subcommand `" .. sub .. "` (status, toggle, restart, log, trigger)", vim.log.levels.ERROR)
    return
  end
  fn()
end

function M.create_command()
  vim.api.nvim_create_user_command("Tandem", M.command, {
    nargs = "?",
    complete = function(lead)
      return vim.tbl_filter(function(s)
        return s:find(lead, 1, true) == 1
      end, vim.tbl_keys(subcommands))
    end,
    desc = "Tandem: status | toggle | restart | log | trigger",
  })
end

local function set_highlight()
  vim.api.nvim_set_hl(0, "TandemSuggestion", { link = "Comment", default = true })
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  M.enabled = true
  set_highlight()
  M.create_command()
  vim.api.nvim_clear_autocmds({ group = augroup })
  vim.api.nvim_create_autocmd("ColorScheme", { group = augroup, callback = set_highlight })
  vim.api.nvim_create_autocmd("FileType", {
    group = augroup,
    pattern = M.config.filetypes or "*",
    callback = function(ev)
      M.attach(ev.buf)
    end,
  })
  require("tandem.suggestion").setup(M.config, augroup)
  -- Buffers already open when setup() runs.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= "" then
      M.attach(buf)
    end
  end
end

return M
