import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import WardenContracts

/// `warden status`: each service's health, version and instance count as the gateway sees it.
///
/// Exit status: 0 when every service is up, 2 when the mesh is degraded or the gateway not ready,
/// 3 when the gateway cannot be reached or answers something unexpected.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each service's health, version and instance count as the gateway sees it."
    )

    @OptionGroup var gateway: GatewayOptions

    @Flag(name: .long, help: "Print the gateway's JSON report instead of a table.")
    var json = false

    func run() async throws {
        let url = gateway.resolvedURL + "/readyz"
        let status: MeshStatus
        let raw: Data
        do {
            (status, raw) = try await Self.fetch(url, timeout: .seconds(Int64(gateway.timeout)))
        } catch {
            FileHandle.standardError.write(Data("warden: cannot read status from \(url): \(Self.explain(error))\n".utf8))
            throw ExitCode(3)
        }
        if json {
            print(String(decoding: raw, as: UTF8.self))
        } else {
            print(StatusReport.render(status), terminator: "")
        }
        if status.status != "ready" { throw ExitCode(2) }
    }

    /// A short reason, with the likely fix for the common case.
    static func explain(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("Connection refused") || text.contains("connectionRefused") || text.contains("errno: 111") {
            return "connection refused: is the gateway running? ('make up' starts a local mesh; --url or WARDEN_URL picks another)"
        }
        return text
    }

    static func fetch(_ url: String, timeout: TimeAmount) async throws -> (MeshStatus, Data) {
        let request = HTTPClientRequest(url: url)
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 4 << 20)
        let data = Data(buffer: body, byteTransferStrategy: .noCopy)
        guard let status = try? EnvelopeCoding.decoder().decode(MeshStatus.self, from: data) else {
            throw StatusFetchError(description: "HTTP \(response.status.code), not a Warden gateway status report")
        }
        return (status, data)
    }
}

struct StatusFetchError: Error, CustomStringConvertible {
    var description: String
}

/// Renders the mesh status as a table for people.
package enum StatusReport {
    package static func render(_ status: MeshStatus) -> String {
        var rows: [[String]] = [["SERVICE", "STATUS", "READY", "INSTANCES", "VERSION"]]
        for service in status.services {
            rows.append([
                service.service.rawValue,
                service.status.rawValue,
                "\(service.readyInstances)/\(service.instances.count)",
                "\(service.instances.count)",
                service.versions.isEmpty ? "-" : service.versions.joined(separator: ","),
            ])
        }
        var output = "mesh: \(status.status) (answered by gateway \(status.gateway.instanceID), version \(status.gateway.version))\n"
        output += table(rows)
        if let servers = status.mcpServers, !servers.isEmpty {
            var serverRows: [[String]] = [["MCP SERVER", "STATE", "TOOLS", "PROMPTS", "RESTARTS"]]
            for server in servers {
                serverRows.append([server.id, server.state, "\(server.tools)", "\(server.prompts)", "\(server.restarts)"])
            }
            output += "\n" + table(serverRows)
            for server in servers where server.state != "ready" {
                output += "  \(server.id) not ready: \(server.detail ?? server.state)\n"
            }
        }
        for service in status.services {
            for instance in service.instances where !instance.ready {
                let failing = instance.checks.filter { !$0.value.ok }.map { "\($0.key): \($0.value.detail ?? "failing")" }.sorted()
                output += "  \(service.service.rawValue) \(instance.instanceID) not ready: \(failing.joined(separator: "; "))\n"
            }
        }
        return output
    }

    /// Left-aligned columns, two spaces apart.
    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var output = ""
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            output += cells.joined(separator: "  ") + "\n"
        }
        return output
    }
}
