-- wrk script: posts `tools/call` (an echo) and checks every reply: HTTP 200, the echoed text, no
-- error. Settings from the environment:
--   HOTPATH_ERA      handshake (2025-11-25, with HOTPATH_SESSION) or modern (2026-07-28, stateless)
--   HOTPATH_TOOL     the tool's name as the target lists it (echo, or fast__echo through Warden)
--   HOTPATH_SESSION  the Mcp-Session-Id of an initialized session (handshake era)
--   HOTPATH_TOKEN    a bearer token (through Warden)
-- Prints one line, "RESULT key=value ...", that scripts/bench.sh reads.

local era = os.getenv("HOTPATH_ERA") or "handshake"
local tool = os.getenv("HOTPATH_TOOL") or "echo"
local session = os.getenv("HOTPATH_SESSION")
local token = os.getenv("HOTPATH_TOKEN")
local text = "hotpath-echo-0123456789"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if era == "modern" then
  wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = tool
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{"text":"' .. text
    .. '"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
else
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
  if session and session ~= "" then wrk.headers["Mcp-Session-Id"] = session end
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{"text":"' .. text .. '"}}}'
end

-- Per thread (each has its own Lua state): replies that were not the echo.
bad = 0
firstBad = nil

function response(status, headers, body)
  if status ~= 200 or not body:find('"text"%s*:%s*"' .. text:gsub("%-", "%%-") .. '"') or body:find('"isError"%s*:%s*true')
    or body:find('"error"%s*:') then
    bad = bad + 1
    if firstBad == nil then firstBad = status .. " " .. body:sub(1, 200) end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local badTotal, example = 0, ""
  for _, thread in ipairs(threads) do
    badTotal = badTotal + thread:get("bad")
    local first = thread:get("firstBad")
    if first and example == "" then example = first end
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT calls=%d seconds=%.3f bad=%d socket_errors=%d p50_ms=%.3f p99_ms=%.3f\n", summary.requests,
    summary.duration / 1e6, badTotal, errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  if example ~= "" then io.write("FIRST_BAD " .. example:gsub("\n", " ") .. "\n") end
end
