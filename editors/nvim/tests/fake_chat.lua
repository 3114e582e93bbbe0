-- A fake OpenAI-compatible chat model on 127.0.0.1 for the code action tests, served by this
-- (the test runner's) Neovim through libuv while the tests poll with vim.wait: every
-- `POST /v1/chat/completions` is recorded and answered by `reply(body)` as a Server-Sent Events
-- stream of `choices[].delta.content` pieces, the shape the `openai-chat` backend reads
-- (crates/tandem-models/src/openai_chat.rs). Anything else gets a 404.
local F = {}

local function sse(text)
  local cut = math.floor(#text / 2)
  local out = {}
  for _, piece in ipairs({ text:sub(1, cut), text:sub(cut + 1) }) do
    local chunk = {
      object = "chat.completion.chunk",
      choices = { { index = 0, delta = { content = piece }, finish_reason = vim.NIL } },
    }
    table.insert(out, "data: " .. vim.json.encode(chunk) .. "\n\n")
  end
  table.insert(out, "data: [DONE]\n\n")
  return table.concat(out)
end

--- Starts the server; `reply(body)` returns the text of the answer to a decoded request body.
--- Returns { url = "http://127.0.0.1:PORT/v1", requests = { {method, path, body}... }, close }.
function F.start(reply)
  local server = assert(vim.uv.new_tcp())
  assert(server:bind("127.0.0.1", 0))
  local self = { requests = {} }
  local function respond(sock, status, ctype, body)
    sock:write(("HTTP/1.1 %s\r\nContent-Type: %s\r\nConnection: close\r\n\r\n"):format(status, ctype) .. body, function()
      sock:shutdown(function()
        sock:close()
      end)
    end)
  end
  assert(server:listen(16, function(err)
    if err then
      return
    end
    local sock = assert(vim.uv.new_tcp())
    server:accept(sock)
    local buf = ""
    sock:read_start(function(rerr, chunk)
      if rerr or not chunk then
        sock:close()
        return
      end
      buf = buf .. chunk
      local head_end = buf:find("\r\n\r\n", 1, true)
      if not head_end then
        return
      end
      local head = buf:sub(1, head_end - 1)
      local len = tonumber(head:lower():match("content%-length:%s*(%d+)")) or 0
      if #buf < head_end + 3 + len then
        return
      end
      sock:read_stop()
      local raw = buf:sub(head_end + 4, head_end + 3 + len)
      local method, path = head:match("^(%S+) (%S+)")
      vim.schedule(function()
        local ok, body = pcall(vim.json.decode, raw)
        table.insert(self.requests, { method = method, path = path, body = ok and body or raw })
        if method == "POST" and path == "/v1/chat/completions" and ok then
          respond(sock, "200 OK", "text/event-stream", sse(reply(body)))
        else
          respond(sock, "404 Not Found", "application/json", '{"error":{"message":"the fake model serves no ' .. tostring(path) .. '"}}')
        end
      end)
    end)
  end))
  local addr = server:getsockname()
  self.url = ("http://127.0.0.1:%d/v1"):format(addr.port)
  function self.close()
    if not server:is_closing() then
      server:close()
    end
  end
  --- The chat requests received so far.
  function self.chats()
    return vim.tbl_filter(function(r)
      return r.path == "/v1/chat/completions"
    end, self.requests)
  end
  return self
end

--- The content of the last user message of a chat request body.
function F.last_user(body)
  local messages = type(body) == "table" and body.messages or {}
  for i = #messages, 1, -1 do
    if messages[i].role == "user" then
      return messages[i].content
    end
  end
  return ""
end

return F
