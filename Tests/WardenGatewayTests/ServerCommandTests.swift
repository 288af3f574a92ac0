import ArgumentParser
import Foundation
import Testing

@testable import WardenCLI

/// `warden server add|update` as operators type it, the README's examples included.
@Suite struct ServerCommandTests {
    /// The members `add` sends for `arguments`, as JSON text with sorted keys.
    func fields(_ arguments: [String]) throws -> String {
        let command = try ServerCommand.Add.parse(arguments)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(JSONField.object(try command.definition.fields())), as: UTF8.self)
    }

    @Test func aServersOwnArgumentsMayStartWithADashAfterTheTerminator() throws {
        #expect(
            try fields(["git", "--env", "A=b", "--", "/usr/local/bin/mcp-server-git", "--repository", "/srv/repo"])
                == #"{"args":["--repository","/srv/repo"],"command":"/usr/local/bin/mcp-server-git","env":{"A":"b"}}"#)
        #expect(try fields(["time", "--", "uvx"]) == #"{"args":[],"command":"uvx"}"#)
        #expect(try fields(["time", "--command", "uvx", "--arg", "mcp-server-time"]) == #"{"args":["mcp-server-time"],"command":"uvx"}"#)
        #expect(throws: (any Error).self) { try fields(["time", "--command", "uvx", "--", "uvx", "mcp-server-time"]) }
    }

    /// Every `warden server …` line of the README's examples parses (placeholders and all).
    @Test func theReadmesServerExamplesParse() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let lines = try String(contentsOf: readme, encoding: .utf8).split(separator: "\n").map(String.init)
        let commands = lines.flatMap { line -> [String] in
            let code = line.split(separator: "#", maxSplits: 1).first.map(String.init) ?? ""
            return code.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("warden server ") }
        }
        #expect(commands.count >= 8, "\(commands)")
        for command in commands {
            let words = Self.shellWords(command).dropFirst()
            #expect(throws: Never.self, "\(command)") { _ = try WardenCommand.parseAsRoot(Array(words)) }
        }
    }

    /// Splits a command line as a shell would for the README's examples (double and single quotes,
    /// no escapes or expansion).
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var started = false
        for character in line {
            if character == quote {
                quote = nil
            } else if quote == nil && (character == "\"" || character == "'") {
                quote = character
                started = true
            } else if character == " " && quote == nil {
                if started { words.append(current) }
                current = ""
                started = false
            } else {
                current.append(character)
                started = true
            }
        }
        if started { words.append(current) }
        return words
    }
}
