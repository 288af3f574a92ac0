import HTTPTypes
import Testing

@testable import WardenServiceKit

@Suite struct HTTPFieldsValueTests {
    @Test func aFieldSentOnceIsItsValueWhateverTheNamesCase() {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields.append(HTTPField(name: HTTPField.Name("MCP-Session-Id")!, value: "abc"))
        #expect(fields.value(.contentType) == "application/json")
        #expect(fields.value(HTTPField.Name("mcp-session-id")!) == "abc")
        #expect(fields.value(.authorization) == nil)
    }

    /// A repeated field reads as the standard subscript reads it (joined), never as its first or
    /// last occurrence alone: a second `Authorization` or session id must not go unnoticed.
    @Test func aRepeatedFieldReadsAsTheSubscriptJoinsIt() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .authorization, value: "Bearer one"))
        fields.append(HTTPField(name: .accept, value: "text/event-stream"))
        fields.append(HTTPField(name: .authorization, value: "Bearer two"))
        #expect(fields.value(.authorization) == fields[.authorization])
        #expect(fields.value(.authorization) == "Bearer one, Bearer two")
        fields.append(HTTPField(name: .cookie, value: "a=1"))
        fields.append(HTTPField(name: .cookie, value: "b=2"))
        #expect(fields.value(.cookie) == fields[.cookie])
    }

    @Test func anEmptyValueIsPresent() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .origin, value: ""))
        #expect(fields.value(.origin) == "")
    }
}
