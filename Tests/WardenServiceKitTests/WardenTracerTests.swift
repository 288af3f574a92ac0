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
        child.end()
        child.end()
        parent.end()
        let finished = buffer.drain()
        #expect(finished.map(\.name) == ["child", "parent"], "each span once")
        #expect(finished.allSatisfy { $0.context.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(finished[1].parentSpanID?.hex == "00f067aa0ba902b7")
        #expect(finished[0].parentSpanID == finished[1].context.spanID)
        #expect(finished[0].attributes.get("mcp.server") == .string("web"))
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
}
