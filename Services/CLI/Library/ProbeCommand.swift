import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `warden probe`: exits 0 when a URL answers HTTP 200. Container health checks use it, since the
/// runtime image has no curl.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Exit 0 if the URL answers HTTP 200 (for container health checks)."
    )

    @Option(name: .long, help: "The URL to probe, e.g. http://127.0.0.1:8080/readyz.")
    var url: String

    @Option(name: .long, help: "Seconds to wait.")
    var timeout: Int = 3

    func run() async throws {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(Int64(timeout)))
            guard response.status.code == 200 else {
                FileHandle.standardError.write(Data("probe: \(url) answered \(response.status.code)\n".utf8))
                throw ExitCode(1)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("probe: \(url) unreachable: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
