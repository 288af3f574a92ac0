import Testing
import WardenMCP

@testable import WardenGateway

@Suite struct MCPMetricsTests {
    @Test func labelsStayFew() {
        #expect(MCPMetrics.method("tools/call") == "tools/call")
        #expect(MCPMetrics.method("tools/call-\(UInt64.random(in: 0...UInt64.max))") == "other", "a client's method names are not labels")
        let metrics = MCPMetrics(toolsPerServer: 2)
        #expect(metrics.tool("a", server: "s") == "a")
        #expect(metrics.tool("b", server: "s") == "b")
        #expect(metrics.tool("c", server: "s") == "other", "past the cap, one bucket")
        #expect(metrics.tool("a", server: "s") == "a", "names seen before keep their label")
        #expect(metrics.tool("c", server: "t") == "c", "the cap is per server")
    }

    @Test func outcomesAreNamed() {
        #expect(MCPMetrics.outcome(.success(.object([("content", .array([]))]))) == "ok")
        #expect(MCPMetrics.outcome(.success(.object([("isError", true)]))) == "tool_error")
        #expect(MCPMetrics.outcome(.failure(JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "no"))) == "denied")
        #expect(MCPMetrics.outcome(.failure(JSONRPCError(code: JSONRPCError.Code.approvalRequired, message: "wait"))) == "approval_required")
        #expect(MCPMetrics.outcome(.failure(JSONRPCError(code: JSONRPCError.Code.rateLimited, message: "slow"))) == "rate_limited")
        #expect(MCPMetrics.outcome(.failure(.downstreamFailure("x"))) == "error")
    }

    @Test func traceContextInMetaIsCheckedAndLeftAloneWithoutATracer() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        #expect(TraceContext.isWellFormed(parent))
        for bad in ["", "00-xyz-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", parent + "-extra"] {
            #expect(!TraceContext.isWellFormed(bad), "\(bad)")
        }
        let params: JSONValue = .object([("name", "a__b"), ("_meta", .object([("traceparent", .string(parent))]))])
        #expect(TraceContext.parent(in: params)?["traceparent"] == parent)
        #expect(TraceContext.parent(in: .object([("_meta", .object([("traceparent", "junk")]))])) == nil)
        // No tracer bootstrapped (the default): the params go to the server unchanged.
        #expect(TraceContext.carried(in: params) == params)
    }
}
