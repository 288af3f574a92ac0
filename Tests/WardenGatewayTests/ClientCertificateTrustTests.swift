import NIOCore
import Testing
import WardenPolicyEngine

@testable import WardenGateway

@Suite struct ClientCertificateTrustTests {
    let trust = ClientCertificateTrust(proxies: [IPAddressRange("10.0.0.0/8")!, IPAddressRange("::1")!], trustDomain: "Warden.Example")

    @Test func onlyConfiguredProxiesAreTrusted() throws {
        #expect(trust.trusts(peer: try SocketAddress(ipAddress: "10.1.2.3", port: 1)))
        #expect(trust.trusts(peer: try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(trust.trusts(peer: try SocketAddress(ipAddress: "::ffff:10.9.9.9", port: 1)))
        #expect(!trust.trusts(peer: try SocketAddress(ipAddress: "11.0.0.1", port: 1)))
        #expect(!trust.trusts(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(!trust.trusts(peer: nil))
    }

    @Test func rangesParse() {
        #expect(IPAddressRange("192.168.1.0/24")!.contains([192, 168, 1, 200]))
        #expect(!IPAddressRange("192.168.1.0/24")!.contains([192, 168, 2, 1]))
        #expect(IPAddressRange("0.0.0.0/0")!.contains([1, 2, 3, 4]))
        #expect(IPAddressRange("fd00::/8")!.contains(IPAddressRange.bytes("fd12::1")!))
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0/8", "::1/129", "1.2.3.4/x"] { #expect(IPAddressRange(bad) == nil, "\(bad)") }
    }

    @Test func configurationIsOffUnlessProxiesAreNamedAndThenNeedsATrustDomain() throws {
        #expect(try ClientCertificateTrust.configured(proxies: nil, trustDomain: nil) == nil)
        #expect(try ClientCertificateTrust.configured(proxies: " , ", trustDomain: "x") == nil)
        #expect(throws: ConfigurationProblem.self) { try ClientCertificateTrust.configured(proxies: "10.0.0.1", trustDomain: nil) }
        #expect(throws: ConfigurationProblem.self) { try ClientCertificateTrust.configured(proxies: "proxy.local", trustDomain: "x") }
        let configured = try ClientCertificateTrust.configured(proxies: "10.0.0.1, 192.168.0.0/16", trustDomain: "example.org")
        #expect(configured?.proxies.count == 2)
    }

    @Test func theNearestProxysElementNamesTheAgent() throws {
        let header =
            #"By=spiffe://warden.example/gateway;Hash=abc;URI=spiffe://evil/org/x/agent/y,By=spiffe://warden.example/gateway;Hash=def;Subject="CN=agent, O=acme";URI=spiffe://warden.example/org/acme/agent/agt_1"#
        let identity = try trust.identity(fromHeader: header).get()
        #expect(identity.org == "acme" && identity.agent == "agt_1")
    }

    @Test func quotedValuesMayHoldSeparators() {
        let elements = ClientCertificateTrust.elements(#"Subject="CN=a;b,c \"d\"";URI=spiffe://t/org/o/agent/a"#)
        #expect(elements.count == 1)
        #expect(elements.first?["subject"] == #"CN=a;b,c "d""#)
        #expect(elements.first?["uri"] == "spiffe://t/org/o/agent/a")
    }

    @Test func badIdentitiesAreRefusedWithTheReason() {
        let cases: [(String, String)] = [
            ("", "empty"),
            ("Hash=abc", "no URI SAN"),
            ("URI=https://warden.example/org/a/agent/b", "not a SPIFFE ID"),
            ("URI=spiffe://other.example/org/a/agent/b", "trust domain"),
            ("URI=spiffe://warden.example/ns/a/sa/b", "must be spiffe://"),
            ("URI=spiffe://warden.example/org//agent/b", "must be spiffe://"),
            ("URI=spiffe://warden.example/org/a/agent/b/extra", "must be spiffe://"),
        ]
        for (header, reason) in cases {
            guard case .failure(let rejection) = trust.identity(fromHeader: header) else {
                Issue.record("accepted \(header)")
                continue
            }
            #expect(rejection.description.contains(reason), "\(header): \(rejection)")
        }
    }
}
