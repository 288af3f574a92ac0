import Testing

@testable import WardenCLI

@Suite struct ConnectBridgeTests {
    @Test func serverSentEventDataFields() {
        let body = "event: message\nid: 1\ndata: {\"a\":1}\n\n: comment\ndata: line one\r\ndata:line two\n\nretry: 100\n\ndata: {\"last\":true}"
        #expect(ServerSentEvents.dataFields(body) == ["{\"a\":1}", "line one\nline two", "{\"last\":true}"])
    }
}
