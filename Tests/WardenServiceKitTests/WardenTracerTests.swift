import Foundation
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
        #expect(WardenTrace.parent(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: nil, decided: true) == nil)
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
        let drained = buffer.drain()
        let finished = DecodedSpan.all(in: drained.entries[...])
        #expect(drained.count == 2 && finished.map(\.name) == ["child", "parent"], "each span once, in the order ended")
        #expect(finished.allSatisfy { $0.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(finished[1].parentSpanID == "00f067aa0ba902b7")
        #expect(finished[0].parentSpanID == finished[1].spanID)
        #expect(finished[0].attributes == ["mcp.tool": "search", "mcp.server": "web"])
        #expect(finished[1].attributes.isEmpty)
        var outgoing: [String: String] = [:]
        tracer.inject(child.context, into: &outgoing, using: DictionaryInjector())
        #expect(outgoing["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(finished[0].spanID)-01")
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
        fromClient.spanContext?.decided = false
        #expect(
            !never.startSpan(
                "edge", context: fromClient, ofKind: .server, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line
            ).isRecording)
        var unsampledClient = ServiceContext.topLevel
        always.extract(
            ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"], into: &unsampledClient, using: DictionaryExtractor())
        unsampledClient.spanContext?.decided = false
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
        for index in 0..<5 {
            tracer.startSpan(
                "x\(index)", context: .topLevel, ofKind: .internal, at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line
            ).end()
        }
        let drained = buffer.drain()
        #expect(
            drained.count == 2 && DecodedSpan.all(in: drained.entries[...]).map(\.name) == ["x0", "x1"], "the first two kept, nothing more written")
        tracer.start("later", parent: nil, ofKind: .internal).end()
        #expect(DecodedSpan.all(in: buffer.drain().entries[...]).map(\.name) == ["later"], "room again once drained")
    }

    @Test func attributesEncodeAsTheyWouldWrittenFrontToBack() {
        for value: SpanAttribute in [.string("hé"), .string(String(repeating: "x", count: 300)), .bool(true), .int64(-5), .int32(300), .double(1.5)] {
            var backToFront = ProtobufWriter(capacity: 16)
            backToFront.message(9) { OTLPEncoder.keyValue("key", value, into: &$0) }
            var frontToBack = FrontToBack()
            frontToBack.message(9, FrontToBack.keyValue("key", value))
            #expect(backToFront.bytes == frontToBack.bytes, "\(value)")
        }
    }

    @Test func theWriterGrowsAndCountsVarintsExactly() {
        var writer = ProtobufWriter(capacity: 1)
        var expected: [UInt8] = []
        for number in [0, 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64.max] as [UInt64] {
            writer.varint(1, number)
            var single = FrontToBack()
            single.varint(1, number)
            expected = single.bytes + expected
            #expect(ProtobufWriter.size(number) == single.bytes.count - 1, "\(number)")
        }
        // Small writes past its capacity again and again, then one larger than twice what it holds.
        for index in 0..<200 {
            writer.varint(3, UInt64(index))
            var single = FrontToBack()
            single.varint(3, UInt64(index))
            expected = single.bytes + expected
        }
        writer.string(2, String(repeating: "y", count: 5_000))
        var text = FrontToBack()
        text.string(2, String(repeating: "y", count: 5_000))
        #expect(writer.bytes == text.bytes + expected, "written in front, through several growths")
        writer.reset()
        #expect(writer.count == 0 && writer.bytes.isEmpty)
        writer.varint(1, 5)
        #expect(writer.bytes == [8, 5], "empty again, and written from the end once more")
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
        let span = FinishedSpan(
            name: "s", context: SpanContext(traceID: .random(), spanID: .random(), sampled: true, traceState: nil), parentSpanID: nil,
            kind: .internal, start: 1, end: 2, fields: short, attributes: SpanAttributes(), status: nil)
        #expect(OTLPEncoder.encode(span) == FrontToBack.span(span).bytes)
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
        #expect(OTLPEncoder.encode(span) == expected, "a key set both ways is exported once, as Warden set it")
    }

    /// The exporter's encoding, written back to front, against the same spans written the plain way
    /// (`FrontToBack`): each field in order, each nested message a buffer of its own.
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
        for span in spans { #expect(OTLPEncoder.encode(span) == FrontToBack.span(span).bytes, "\(span.name)") }
        let resource = OTLPEncoder.Resource(serviceName: "warden-gateway", instance: "i", version: "1")
        var scopeSpans = FrontToBack()
        var scope = FrontToBack()
        scope.string(1, "warden")
        scopeSpans.message(1, scope)
        for span in spans { scopeSpans.message(2, FrontToBack.span(span)) }
        var resourceMessage = FrontToBack()
        for (key, value) in resource.attributes { resourceMessage.message(1, FrontToBack.keyValue(key, .string(value))) }
        var resourceSpans = FrontToBack()
        resourceSpans.message(1, resourceMessage)
        resourceSpans.message(2, scopeSpans)
        var request = FrontToBack()
        request.message(1, resourceSpans)
        let buffer = SpanBuffer()
        for span in spans { buffer.append(span) }
        let drained = buffer.drain()
        #expect(drained.count == 2 && drained.batches.count == 1)
        #expect(OTLPEncoder.request(resource: resource, entries: drained.entries[...]) == request.bytes, "a batch: each span once, in order")
    }

    @Test func theBufferSplitsItsSpansIntoBatchesAndKeepsNoneTwice() {
        let buffer = SpanBuffer(capacity: 10, batchSize: 2)
        let tracer = WardenTracer(buffer: buffer, sampleRatio: 1)
        for index in 0..<5 { tracer.start("span \(index)", parent: nil, ofKind: .internal).end() }
        let drained = buffer.drain()
        #expect(drained.count == 5 && drained.batches.map(\.spans) == [2, 2, 1])
        #expect(drained.batches.map { DecodedSpan.all(in: $0.entries).map(\.name) } == [["span 0", "span 1"], ["span 2", "span 3"], ["span 4"]])
        #expect(buffer.drain().batches.isEmpty)
        tracer.start("after", parent: nil, ofKind: .internal).end()
        let next = buffer.drain()
        #expect(next.batches.map(\.spans) == [1] && DecodedSpan.all(in: next.entries[...]).map(\.name) == ["after"], "a drain starts afresh")
        for index in 0..<4 { tracer.start("even \(index)", parent: nil, ofKind: .internal).end() }
        #expect(buffer.drain().batches.map(\.spans) == [2, 2], "no empty batch after a full one")
    }

    /// Warden's own entry points (with a tracer of the test's own: the process's is not installed
    /// in tests): a span is the task's current span while its body runs and the parent of the next;
    /// a client's sampled flag is not followed, a service's is.
    @Test func spansNestInTheirTaskAndOutsideParentsAreFollowedAsTrusted() async throws {
        let buffer = SpanBuffer()
        let tracer = WardenTracer(buffer: buffer, sampleRatio: 1)
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        let client = try #require(WardenTrace.parent(traceparent: unsampled, tracestate: "v=1", decided: false, tracer: tracer))
        #expect(!client.decided && !client.sampled && client.traceState == "v=1")
        #expect(WardenTrace.parent(traceparent: "00-bad", tracestate: nil, decided: false, tracer: tracer) == nil)
        #expect(WardenTrace.currentSpan == nil)
        let ids = await WardenTrace.withSpan("outer", parent: client, ofKind: .server, tracer: tracer) { outer in
            #expect(outer != nil && WardenTrace.currentSpan === outer)
            #expect(WardenTrace.current()?.traceparent == outer?.spanContext.traceparent)
            #expect(WardenTrace.current()?.traceparent.hasSuffix("-01") == true, "recorded, whatever the client's flag said")
            #expect(WardenTrace.current()?.tracestate == "v=1")
            let inner = await WardenTrace.withSpan("inner", ofKind: .client, tracer: tracer) { inner in
                #expect(WardenTrace.currentSpan === inner)
                return inner?.spanContext.spanID.hex
            }
            #expect(WardenTrace.currentSpan === outer, "the outer span is current again")
            return (outer?.spanContext.spanID.hex, inner)
        }
        #expect(WardenTrace.currentSpan == nil && WardenTrace.current() == nil)
        let spans = DecodedSpan.all(in: buffer.drain().entries[...])
        #expect(spans.map(\.name) == ["inner", "outer"])
        #expect(spans.allSatisfy { $0.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" }, "the client's trace id is kept")
        #expect(spans[1].parentSpanID == "00f067aa0ba902b7" && spans[1].spanID == ids.0)
        #expect(spans[0].parentSpanID == ids.0 && spans[0].spanID == ids.1)
        // Another service's decision not to record is followed, and the trace still goes on.
        let service = try #require(WardenTrace.parent(traceparent: unsampled, tracestate: nil, decided: true, tracer: tracer))
        let onward = await WardenTrace.withSpan("hop", parent: service, ofKind: .server, tracer: tracer) { span in
            #expect(span?.isRecording == false)
            return WardenTrace.current()?.traceparent
        }
        #expect(onward?.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") == true && onward?.hasSuffix("-00") == true)
        #expect(buffer.drain().isEmpty)
    }
}

/// Protobuf written the plain way, front to back, each nested message in a buffer of its own: an
/// independent encoding to check `ProtobufWriter` and `OTLPEncoder` against.
struct FrontToBack {
    var bytes: [UInt8] = []

    mutating func raw(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func tag(_ field: Int, _ wireType: UInt8) { raw(UInt64(field) << 3 | UInt64(wireType)) }

    mutating func varint(_ field: Int, _ value: UInt64) {
        tag(field, 0)
        raw(value)
    }

    mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        tag(field, 2)
        raw(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: FrontToBack) { bytes(field, value.bytes) }

    static func keyValue(_ key: String, _ value: SpanAttribute) -> FrontToBack {
        var any = FrontToBack()
        switch value {
        case .string(let text): any.string(1, text)
        case .bool(let flag): any.varint(2, flag ? 1 : 0)
        case .int32(let number): any.varint(3, UInt64(bitPattern: Int64(number)))
        case .int64(let number): any.varint(3, UInt64(bitPattern: number))
        case .double(let number): any.fixed64(4, number.bitPattern)
        default: any.string(1, "\(value)")
        }
        var pair = FrontToBack()
        pair.string(1, key)
        pair.message(2, any)
        return pair
    }

    static func span(_ span: FinishedSpan) -> FrontToBack {
        var message = FrontToBack()
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
            message.message(9, keyValue(key.description, attribute))
        }
        span.attributes.forEach { key, value in message.message(9, keyValue(key, value)) }
        if let status = span.status {
            var statusMessage = FrontToBack()
            statusMessage.varint(3, status.code == .error ? 2 : 1)
            message.message(15, statusMessage)
        }
        return message
    }
}

/// A span read back from the buffer's protobuf (the fields the tests look at).
struct DecodedSpan {
    var name = ""
    var traceID = ""
    var spanID = ""
    var parentSpanID: String?
    var attributes: [String: String] = [:]

    /// The spans of `ScopeSpans.spans` entries, in order.
    static func all(in entries: ArraySlice<UInt8>) -> [DecodedSpan] {
        fields(entries).filter { $0.field == 2 }.map { entry in
            var span = DecodedSpan()
            for field in fields(entry.bytes) {
                switch field.field {
                case 1: span.traceID = hex(field.bytes)
                case 2: span.spanID = hex(field.bytes)
                case 4: span.parentSpanID = hex(field.bytes)
                case 5: span.name = String(decoding: field.bytes, as: UTF8.self)
                case 9:
                    let pair = fields(field.bytes)
                    let key = pair.first { $0.field == 1 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
                    let any = pair.first { $0.field == 2 }.map { fields($0.bytes) } ?? []
                    span.attributes[key] = any.first.map { $0.field == 1 ? String(decoding: $0.bytes, as: UTF8.self) : "\($0.number)" }
                default: break
                }
            }
            return span
        }
    }

    /// A message's fields: each length-delimited one's bytes, each varint's or fixed64's number.
    static func fields(_ bytes: ArraySlice<UInt8>) -> [(field: Int, bytes: ArraySlice<UInt8>, number: Int64)] {
        var result: [(field: Int, bytes: ArraySlice<UInt8>, number: Int64)] = []
        var index = bytes.startIndex
        func varint() -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.endIndex {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte < 0x80 { break }
            }
            return value
        }
        while index < bytes.endIndex {
            let tag = varint()
            switch tag & 7 {
            case 0: result.append((Int(tag >> 3), [], Int64(bitPattern: varint())))
            case 1:
                let value = bytes[index..<index + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                index += 8
                result.append((Int(tag >> 3), [], Int64(bitPattern: value)))
            default:
                let length = Int(varint())
                result.append((Int(tag >> 3), bytes[index..<index + length], 0))
                index += length
            }
        }
        return result
    }

    static func hex(_ bytes: ArraySlice<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
