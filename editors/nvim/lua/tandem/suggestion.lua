-- Ghost text: requests `textDocument/inlineCompletion`, shows the first line as inline virtual
-- text at the cursor and the rest as virtual lines (like Neovim 0.12's built-in inline
-- completion), and applies it on accept.
local compat = require("tandem.compat")

local M = {}

M.ns = vim.api.nvim_create_namespace("tandem")

local config = {}
local timer = nil

--- The suggestion on screen (nil when none):
--- { bufnr, client_id, encoding, items, index, row, col, tick, text, extmark }
--- `row`/`col` (0-based, byte col) is where the ghost text starts, `tick` the changedtick it was
--- computed for, `text` what is still to insert there.
local shown = nil
--- The request in flight: { client, id, bufnr, tick, row, col }
local inflight = nil
--- Set by a partial accept so the TextChangedI/CursorMovedI it causes keep the rest on screen.
local suppressed = nil

local function tandem()
  return require("tandem")
end

local function cursor()
  local pos = vim.api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function item_text(item)
  local t = item.insertText
  if type(t) == "table" then
    t = t.value
  end
  if type(t) ~= "string" then
    return nil
  end
  return (t:gsub("\r\n", "\n"))
end

local function expand_tabs(s)
  local ts = vim.bo.tabstop
  return (s:gsub("\t", string.rep(" ", ts > 0 and ts or 8)))
end

local function render()
  if not shown then
    return
  end
  vim.api.nvim_buf_clear_namespace(shown.bufnr, M.ns, 0, -1)
  local lines = vim.split(shown.text, "\n", { plain = true })
  local opts = {
    hl_mode = "combine",
    -- Right gravity (the default): the cursor is drawn before inline virtual text at its
    -- position, as Neovim 0.12's built-in inline completion does; with left gravity it was
    -- drawn after the ghost text. The mark is redrawn on every change, so gravity moves nothing.
    right_gravity = true,
    priority = 65535,
  }
  if lines[1] ~= "" then
    opts.virt_text = { { expand_tabs(lines[1]), "TandemSuggestion" } }
    opts.virt_text_pos = "inline"
  end
  if #lines > 1 then
    local vl = {}
    for i = 2, #lines do
      table.insert(vl, { { expand_tabs(lines[i]), "TandemSuggestion" } })
    end
    opts.virt_lines = vl
  end
  shown.extmark = vim.api.nvim_buf_set_extmark(shown.bufnr, M.ns, shown.row, shown.col, opts)
end

--- The part of `item` still to be inserted at the cursor, or nil when it does not fit the
--- buffer any more (the text typed since `range.start` differs from the item's start).
local function remaining_text(bufnr, item, encoding, row, col)
  local text = item_text(item)
  if not text or text == "" then
    return nil
  end
  local range = item.range
  if range and range.start then
    if range.start.line ~= row then
      return nil
    end
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
    local sc = compat.byte_col(line, range.start.character, encoding)
    if sc < col then
      local typed = line:sub(sc + 1, col)
      if text:sub(1, #typed) ~= typed then
        return nil
      end
      text = text:sub(#typed + 1)
    end
  end
  if text == "" then
    return nil
  end
  return text
end

function M.clear()
  if timer then
    timer:stop()
  end
  if inflight then
    local c = inflight
    inflight = nil
    pcall(compat.cancel_request, c.client, c.id)
  end
  if shown and vim.api.nvim_buf_is_valid(shown.bufnr) then
    vim.api.nvim_buf_clear_namespace(shown.bufnr, M.ns, 0, -1)
  end
  shown = nil
end

function M.is_visible()
  if not shown then
    return false
  end
  if shown.bufnr ~= vim.api.nvim_get_current_buf() then
    return false
  end
  local row, col = cursor()
  return row == shown.row and col == shown.col and vim.b[shown.bufnr].changedtick == shown.tick
end

--- The current suggestion, for scripts and tests: { text, items, index } or nil.
function M.current()
  if not shown then
    return nil
  end
  return { text = shown.text, items = shown.items, index = shown.index, row = shown.row, col = shown.col }
end

local function show(bufnr, client, items, index)
  if bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local row, col = cursor()
  local n = #items
  for k = 0, n - 1 do
    local i = ((index - 1 + k) % n) + 1
    local text = remaining_text(bufnr, items[i], client.offset_encoding, row, col)
    if text then
      shown = {
        bufnr = bufnr,
        client_id = client.id,
        encoding = client.offset_encoding,
        items = items,
        index = i,
        row = row,
        col = col,
        tick = vim.b[bufnr].changedtick,
        text = text,
      }
      render()
      return true
    end
  end
  return false
end
M._show = show

--- Ask the server for a completion at the cursor. `kind`: 1 invoked (manual), 2 automatic.
function M.trigger(kind)
  kind = kind or 1
  if not tandem().enabled then
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = tandem().get_client(bufnr)
  if not client then
    return
  end
  M.clear()
  local row, col = cursor()
  local tick = vim.b[bufnr].changedtick
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = kind }
  local req = { client = client, bufnr = bufnr, tick = tick, row = row, col = col }
  local ok, id = compat.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if inflight ~= req then
      return -- superseded or cancelled
    end
    inflight = nil
    if err or not result then
      return
    end
    -- Drop stale answers: the buffer, the text or the cursor moved on.
    if vim.api.nvim_get_current_buf() ~= bufnr or vim.b[bufnr].changedtick ~= tick then
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col then
      return
    end
    if not vim.api.nvim_get_mode().mode:match("^i") then
      return
    end
    local items = result.items or result
    if type(items) ~= "table" or #items == 0 then
      return
    end
    show(bufnr, client, items, 1)
  end, bufnr)
  if ok and id then
    req.id = id
    inflight = req
  end
end

local function schedule_auto()
  if not tandem().enabled or config.auto_trigger == false then
    return
  end
  if not timer then
    timer = vim.uv.new_timer()
  end
  timer:stop()
  timer:start(
    config.debounce_ms or 75,
    0,
    vim.schedule_wrap(function()
      if vim.api.nvim_get_mode().mode:match("^i") then
        M.trigger(2)
      end
    end)
  )
end

local function on_change()
  local bufnr = vim.api.nvim_get_current_buf()
  if suppressed then
    local row, col = cursor()
    if suppressed.bufnr == bufnr and suppressed.tick == vim.b[bufnr].changedtick and suppressed.row == row and suppressed.col == col then
      return
    end
    suppressed = nil
  end
  if shown and M.is_visible() then
    return
  end
  M.clear()
  if tandem().get_client(bufnr) then
    schedule_auto()
  end
end

--- Insert `text` at the cursor (or replace `srow,scol..erow,ecol`) and put the cursor after it.
local function insert(bufnr, text, srow, scol, erow, ecol)
  local row, col = cursor()
  srow, scol = srow or row, scol or col
  erow, ecol = erow or srow, ecol or scol
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(bufnr, srow, scol, erow, ecol, lines)
  local end_row = srow + #lines - 1
  local end_col = (#lines == 1 and scol or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  return end_row, end_col
end

--- Accept the whole suggestion: replace the item's range with its text.
function M.accept()
  if not M.is_visible() then
    return false
  end
  local s = shown
  local item = s.items[s.index]
  M.clear()
  local range = item.range
  local full = item_text(item)
  if range and range.start and full and s.text == remaining_text(s.bufnr, item, s.encoding, s.row, s.col) then
    local function line(n)
      return vim.api.nvim_buf_get_lines(s.bufnr, n, n + 1, false)[1] or ""
    end
    local sr, er = range.start.line, range["end"].line
    local sc = compat.byte_col(line(sr), range.start.character, s.encoding)
    local ec = compat.byte_col(line(er), range["end"].character, s.encoding)
    -- Never delete text behind the cursor that the item does not account for.
    if sr == s.row and sc <= s.col and (er > s.row or (er == s.row and ec >= s.col)) then
      insert(s.bufnr, full, sr, sc, er, ec)
      return true
    end
  end
  insert(s.bufnr, s.text)
  return true
end

--- Accept `part`, a prefix of the suggestion, and keep the rest on screen.
local function accept_prefix(part)
  local s = shown
  if part == "" then
    return false
  end
  if part == s.text then
    return M.accept()
  end
  local rest = s.text:sub(#part + 1)
  vim.api.nvim_buf_clear_namespace(s.bufnr, M.ns, 0, -1)
  shown = nil
  local row, col = insert(s.bufnr, part)
  -- Keep the remaining text, anchored at the new cursor; the item is now a plain insertion.
  shown = vim.tbl_extend("force", s, {
    row = row,
    col = col,
    tick = vim.b[s.bufnr].changedtick,
    text = rest,
    items = { { insertText = rest } },
    index = 1,
  })
  suppressed = { bufnr = s.bufnr, tick = shown.tick, row = row, col = col }
  render()
  return true
end

function M.accept_word()
  if not M.is_visible() then
    return false
  end
  local text = shown.text
  local part = text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+")
  return accept_prefix(part or text)
end

function M.accept_line()
  if not M.is_visible() then
    return false
  end
  local text = shown.text
  local part
  if text:sub(1, 1) == "\n" then
    part = "\n" .. (text:sub(2):match("^[^\n]*"))
  else
    part = text:match("^[^\n]*")
  end
  return accept_prefix(part)
end

function M.cycle(dir)
  if not M.is_visible() then
    return false
  end
  local s = shown
  local n = #s.items
  if n < 2 then
    return true
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not client then
    return false
  end
  local start = ((s.index - 1 + dir) % n) + 1
  vim.api.nvim_buf_clear_namespace(s.bufnr, M.ns, 0, -1)
  shown = nil
  if dir > 0 then
    return show(s.bufnr, client, s.items, start)
  end
  -- Walk backwards: try start, start-1, ...
  for k = 0, n - 1 do
    local i = ((start - 1 - k) % n) + 1
    if remaining_text(s.bufnr, s.items[i], client.offset_encoding, s.row, s.col) then
      return show(s.bufnr, client, s.items, i)
    end
  end
  return false
end

function M.dismiss()
  if not M.is_visible() then
    return false
  end
  M.clear()
  return true
end

local actions = {
  accept = M.accept,
  accept_word = M.accept_word,
  accept_line = M.accept_line,
  next = function()
    return M.cycle(1)
  end,
  prev = function()
    return M.cycle(-1)
  end,
  dismiss = M.dismiss,
}

--- Called by the keymaps through <Cmd>.
function M._do(name)
  actions[name]()
end

local mapped = {}

local function set_keymaps(keymaps)
  for _, lhs in ipairs(mapped) do
    pcall(vim.keymap.del, "i", lhs)
  end
  mapped = {}
  for name, lhs in pairs(keymaps or {}) do
    if lhs and lhs ~= "" then
      if name == "trigger" then
        vim.keymap.set("i", lhs, function()
          M.trigger(1)
        end, { desc = "Tandem: request a suggestion" })
      elseif actions[name] then
        -- Act only when a suggestion is on screen; otherwise the key does what it always does.
        vim.keymap.set("i", lhs, function()
          if M.is_visible() then
            return ("<Cmd>lua require('tandem.suggestion')._do(%q)<CR>"):format(name)
          end
          return lhs
        end, { expr = true, replace_keycodes = true, desc = "Tandem: " .. name })
      end
      table.insert(mapped, lhs)
    end
  end
end

function M.setup(cfg, augroup)
  config = cfg
  set_keymaps(cfg.keymaps)
  vim.api.nvim_create_autocmd({ "TextChangedI", "CursorMovedI" }, {
    group = augroup,
    callback = on_change,
  })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = augroup,
    callback = function()
      suppressed = nil
      M.clear()
    end,
  })
end

return M
