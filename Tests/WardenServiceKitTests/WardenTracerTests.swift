import ServiceContextModule
import Testing
import Tracing

@testable import WardenServiceKit

@Suite struct WardenTracerTests {
    @Test func traceparentsAreReadAndWrittenAsW3CSays() throws {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(SpanContext(traceparent: text, traceState: "vendor=1"))
        #expect(context.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanID.hex == "00f067aa0ba902b7")
        #expect(context.sampled)
        #expect(context.traceparent == text)
        #expect(context.traceID.bytes.count == 16 && context.spanID.bytes.count == 8)
        #expect(context.traceID.bytes.first == 0x4b && context.spanID.bytes.last == 0xb7)
        #expect(SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
        #expect(
            SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.traceparent
                == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        #expect(
            SpanContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later")?.sampled == true,
            "a later version's extra fields")
        #expect(SpanContext(traceparent: text, traceState: "bad\nstate")?.traceState == nil, "a tracestate of other characters is dropped")
        for bad in [
            "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            #expect(SpanContext(traceparent: bad) == nil, "\(bad)")
        }
    }

    @Test func idsAreNeverZeroNorRepeatedAndSpreadEvenly() {
        var spans = Set<UInt64>()
        var traces = Set<SpanContext.TraceID>()
        var high = 0
        for _ in 0..<100_000 {
            let span = SpanContext.SpanID.random()
            #expect(span.value != 0)
            spans.insert(span.value)
            traces.insert(.random())
            if span.value >= UInt64.max / 2 { high += 1 }
        }
        #expect(spans.count == 100_000 && traces.count == 100_000)
        // Half of them in the upper half, within a generous margin (sampling compares against a threshold).
        #expect((48_000...52_000).contains(high), "\(high)")
    }

    /// With tracing off (no tracer installed, as in this test process) no span is made and no trace
    /// context is read or written.
    @Test func withoutATracerNothingIsTraced() async {
        #expect(WardenTrace.tracer == nil)
        let made = await WardenTrace.withSpan("nothing", ofKind: .client) { span in span == nil }
        #expect(made)
        var context = ServiceContext.topLevel
        WardenTrace.extract(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: nil, into: &context)
        #expect(context.spanContext == nil)
        #expect(WardenTrace.current() == nil)
    }

    @Test func spansContinueTheirParentAndLandInTheBuffer() throws {
        let buffer = SpanBuffer()
        let tracer = WardenTracer(buffer: buffer, sampleRatio: 1)
        var incoming = ServiceContext.topLevel
        tracer.extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], into: &incoming, using: DictionaryExtractor())
        let parent = tracer.startSpan(
            "parent", context: incoming, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
        let child = tracer.startSpan(
            "child", context: parent.context, ofKind: .client, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
        child.attributes["mcp.server"] = "web"
        child.annotate { $0["mcp.tool"] = "search" }
        child.end()
        child.end()
        parent.end()
        let finished = buffer.drain()
        #expect(finished.map(\.name) == ["child", "parent"], "each span once")
        #expect(finished.allSatisfy { $0.context.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(finished[1].parentSpanID?.hex == "00f067aa0ba902b7")
        #expect(finished[0].parentSpanID == finished[1].context.spanID)
        #expect(finished[0].attributes.get("mcp.server") == .string("web"))
        #expect(finished[0].fields["mcp.tool"] == "search" && finished[1].fields.isEmpty)
        var outgoing: [String: String] = [:]
        tracer.inject(child.context, into: &outgoing, using: DictionaryInjector())
        #expect(outgoing["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(finished[0].context.spanID.hex)-01")
        #expect(buffer.drain().isEmpty)
    }

    @Test func samplingGoesByTraceIDAndUnsampledSpansStillPropagate() {
        let buffer = SpanBuffer()
        let never = WardenTracer(buffer: buffer, sampleRatio: 0)
        let span = never.startSpan(
            "x", context: .topLevel, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
        #expect(!span.isRecording)
        span.attributes["a"] = "b"
        span.end()
        #expect(buffer.drain().isEmpty)
        var outgoing: [String: String] = [:]
        never.inject(span.context, into: &outgoing, using: DictionaryInjector())
        #expect(outgoing["traceparent"]?.hasSuffix("-00") == true, "the trace goes on, marked not sampled")
        let half = WardenTracer(buffer: buffer, sampleRatio: 0.5)
        let recorded = (0..<2_000).filter { _ in half.decides() }.count
        #expect((800...1_200).contains(recorded), "about half: \(recorded)")
        // A client's flag is not followed (nor is its choice of trace id the decision); a decision
        // that came over NATS from another service is.
        let always = WardenTracer(buffer: buffer, sampleRatio: 1)
        var fromClient = ServiceContext.topLevel
        never.extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], into: &fromClient, using: DictionaryExtractor())
        fromClient.distrustSampling()
        #expect(
            !never.startSpan(
                "edge", context: fromClient, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line
            ).isRecording)
        var unsampledClient = ServiceContext.topLevel
        always.extract(
            ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"], into: &unsampledClient, using: DictionaryExtractor())
        unsampledClient.distrustSampling()
        let edge = always.startSpan(
            "edge", context: unsampledClient, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
        #expect(edge.isRecording && edge.spanContext.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736", "the client's trace id is kept")
        var fromService = ServiceContext.topLevel
        always.extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"], into: &fromService, using: DictionaryExtractor())
        #expect(
            !always.startSpan(
                "hop", context: fromService, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line
            ).isRecording)
        // A malformed parent leaves the context as it was.
        var kept = edge.context
        always.extract(["traceparent": "00-zz"], into: &kept, using: DictionaryExtractor())
        #expect(kept.spanContext == edge.spanContext)
    }

    @Test func aFullBufferDropsRatherThanGrows() {
        let buffer = SpanBuffer(capacity: 2)
        let tracer = WardenTracer(buffer: buffer, sampleRatio: 1)
        for _ in 0..<5 {
            tracer.startSpan("x", context: .topLevel, ofKind: .internal, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
                .end()
        }
        #expect(buffer.drain().count == 2)
    }

    @Test func attributesWrittenInPlaceEncodeAsNestedMessagesDo() {
        for value: SpanAttribute in [.string("hé"), .string(String(repeating: "x", count: 300)), .bool(true), .int64(-5), .int32(300), .double(1.5)] {
            var inPlace = OTLPEncoder.Message()
            inPlace.keyValue(9, "key", value)
            var nested = OTLPEncoder.Message()
            nested.message(9, OTLPEncoder.keyValue("key", value))
            #expect(inPlace.bytes == nested.bytes, "\(value)")
        }
    }

    @Test func spanFieldsKeepOneValueAKeyInTheOrderSet() {
        var fields = SpanFields()
        #expect(fields.isEmpty)
        fields["mcp.server"] = "web"
        fields["http.response.status_code"] = 200
        fields["mcp.server"] = "files"
        #expect(fields["mcp.server"] == "files", "set again, replaced")
        #expect(fields["http.response.status_code"] == 200)
        #expect(fields.entries.map { $0.key.description } == ["mcp.server", "http.response.status_code"])
        // Keys are compared by their text, wherever the literal lives.
        let key: StaticString = "mcp.server"
        #expect(fields[key] == SpanFields.Value.string("files"))
        #expect(SpanFields.same("a", "a") && !SpanFields.same("a", "b") && !SpanFields.same("ab", "a") && SpanFields.same("ab", "ab"))
        // The same text at two addresses (equal literals share one, so compared here as buffers).
        let first = Array("mcp.server".utf8), second = Array("mcp.server".utf8), other = Array("mcp.servex".utf8)
        first.withUnsafeBufferPointer { a in
            second.withUnsafeBufferPointer { b in #expect(a.baseAddress != b.baseAddress && SpanFields.same(a, b)) }
            other.withUnsafeBufferPointer { c in #expect(!SpanFields.same(a, c)) }
        }
        #expect(fields.contains("mcp.server") && !fields.contains("mcp.serve"))
        // A one-character literal has no pointer of its own: read, compared and encoded all the same.
        var short = SpanFields()
        short["k"] = "v"
        short["k"] = 1
        #expect(short["k"] == 1 && short.entries.count == 1)
        var encoded = OTLPEncoder.Message()
        encoded.keyValue(9, "k", SpanFields.Value.int(1))
        var nested = OTLPEncoder.Message()
        nested.message(9, OTLPEncoder.keyValue("k", .int64(1)))
        #expect(encoded.bytes == nested.bytes)
        fields["mcp.server"] = nil as String?
        #expect(fields.entries.map { $0.key.description } == ["http.response.status_code"])
        #expect(fields["mcp.server"] == nil as String?)
    }

    /// Against bytes written by the protobuf library itself: field numbers and wire types as the
    /// OTLP proto says. Made with PyPI `opentelemetry-proto` (in the tests' virtualenv):
    ///
    ///     from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
    ///     from opentelemetry.proto.common.v1.common_pb2 import KeyValue, AnyValue
    ///     span = Span(trace_id=bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), span_id=bytes.fromhex("00f067aa0ba902b7"),
    ///                 trace_state="v=1", parent_span_id=bytes.fromhex("0102030405060708"), name="MCP x",
    ///                 kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=1, end_time_unix_nano=2,
    ///                 attributes=[KeyValue(key="mcp.server", value=AnyValue(string_value="web")),
    ///                             KeyValue(key="rpc.jsonrpc.error_code", value=AnyValue(int_value=-32603))],
    ///                 status=Status(code=Status.STATUS_CODE_ERROR))
    ///     print(list(span.SerializeToString()))
    @Test func aSpanEncodesAsTheOTLPProtoSays() throws {
        var fields = SpanFields()
        fields["mcp.server"] = "web"
        fields["rpc.jsonrpc.error_code"] = -32_603
        var attributes = SpanAttributes()
        attributes["mcp.server"] = "shadowed"
        let span = FinishedSpan(
            name: "MCP x",
            context: try #require(SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", traceState: "v=1")),
            parentSpanID: SpanContext.SpanID(value: 0x0102_0304_0506_0708), kind: .client, start: 1, end: 2, fields: fields,
            attributes: attributes, status: SpanStatus(code: .error))
        let expected: [UInt8] = [
            10, 16, 75, 249, 47, 53, 119, 179, 77, 166, 163, 206, 146, 157, 14, 14, 71, 54, 18, 8, 0, 240, 103, 170, 11, 169, 2, 183, 26, 3, 118,
            61, 49, 34, 8, 1, 2, 3, 4, 5, 6, 7, 8, 42, 5, 77, 67, 80, 32, 120, 48, 3, 57, 1, 0, 0, 0, 0, 0, 0, 0, 65, 2, 0, 0, 0, 0, 0, 0, 0, 74,
            19, 10, 10, 109, 99, 112, 46, 115, 101, 114, 118, 101, 114, 18, 5, 10, 3, 119, 101, 98, 74, 37, 10, 22, 114, 112, 99, 46, 106, 115,
            111, 110, 114, 112, 99, 46, 101, 114, 114, 111, 114, 95, 99, 111, 100, 101, 18, 11, 24, 165, 129, 254, 255, 255, 255, 255, 255, 255,
            1, 122, 2, 24, 2,
        ]
        #expect(OTLPEncoder.encode(span).bytes == expected, "a key set both ways is exported once, as Warden set it")
    }

    /// The exporter's encoding, written in place into one reused buffer, against the same span
    /// written the plain way: each field a nested message of its own.
    @Test func aSpanEncodesAsTheSameMessageWrittenNestedWould() throws {
        var fields = SpanFields()
        fields["mcp.method"] = "tools/call"
        fields["rpc.jsonrpc.error_code"] = -32_603
        fields["warden.request.id"] = String(repeating: "é", count: 100)
        var attributes = SpanAttributes()
        attributes["other"] = 1.5
        let context = try #require(SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", traceState: "v=1"))
        let parent = SpanContext.SpanID(value: 0x0102_0304_0506_0708)
        let spans = [
            FinishedSpan(
                name: "MCP tools/call → web", context: context, parentSpanID: parent, kind: .client, start: 1_700_000_000_000_000_000,
                end: 1_700_000_000_000_500_000, fields: fields, attributes: attributes, status: SpanStatus(code: .error)),
            FinishedSpan(
                name: "HTTP POST /mcp", context: context, parentSpanID: nil, kind: .server, start: 1, end: 2, fields: SpanFields(),
                attributes: SpanAttributes(), status: nil),
        ]
        func nested(_ span: FinishedSpan) -> OTLPEncoder.Message {
            var message = OTLPEncoder.Message()
            message.bytes(1, span.context.traceID.bytes)
            message.bytes(2, span.context.spanID.bytes)
            if let state = span.context.traceState { message.bytes(3, Array(state.utf8)) }
            if let parent = span.parentSpanID { message.bytes(4, parent.bytes) }
            message.bytes(5, Array(span.name.utf8))
            message.varint(6, OTLPEncoder.kind(span.kind))
            message.fixed64(7, span.start)
            message.fixed64(8, span.end)
            for (key, value) in span.fields.entries {
                let attribute: SpanAttribute =
                    switch value {
                    case .string(let text): .string(text)
                    case .int(let number): .int64(number)
                    }
                message.message(9, OTLPEncoder.keyValue(key.description, attribute))
            }
            span.attributes.forEach { key, value in message.message(9, OTLPEncoder.keyValue(key, value)) }
            if let status = span.status {
                var statusMessage = OTLPEncoder.Message()
                statusMessage.varint(3, status.code == .error ? 2 : 1)
                message.message(15, statusMessage)
            }
            return message
        }
        for span in spans { #expect(OTLPEncoder.encode(span).bytes == nested(span).bytes, "\(span.name)") }
        let resource = OTLPEncoder.Resource(serviceName: "warden-gateway", instance: "i", version: "1")
        var scopeSpans = OTLPEncoder.Message()
        var scope = OTLPEncoder.Message()
        scope.string(1, "warden")
        scopeSpans.message(1, scope)
        for span in spans { scopeSpans.message(2, nested(span)) }
        var resourceMessage = OTLPEncoder.Message()
        for (key, value) in resource.attributes { resourceMessage.message(1, OTLPEncoder.keyValue(key, .string(value))) }
        var resourceSpans = OTLPEncoder.Message()
        resourceSpans.message(1, resourceMessage)
        resourceSpans.message(2, scopeSpans)
        var request = OTLPEncoder.Message()
        request.message(1, resourceSpans)
        #expect(OTLPEncoder.request(resource: resource, spans: spans) == request.bytes, "a batch: each span once, in order, reusing one buffer")
    }
}
