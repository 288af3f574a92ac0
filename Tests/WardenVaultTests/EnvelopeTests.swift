import Crypto
import Foundation
import Testing
import WardenContracts

@testable import WardenVault

/// Envelope encryption without a database: what binds a ciphertext to its record, and what fails.
@Suite struct EnvelopeTests {
    let v1 = OrgKey(org: "acme", version: 1, key: SymmetricKey(size: .bits256))
    let value = Array("ghp_example-token-value".utf8)

    func context(_ path: String = "github/token", version: Int = 1, org: String = "acme") -> [UInt8] {
        SecretStore.context(org: org, path: path, version: version)
    }

    @Test func aSealedValueOpensOnlyWithItsOwnRecordVersionAndOrg() throws {
        let sealed = try Envelope.seal(value, under: v1, context: context())
        #expect(try sealed.open(with: v1, context: context(), record: "r") == value)
        #expect(sealed.ciphertext.count == value.count + 28, "nonce, ciphertext and tag: nothing else")
        #expect(!Data(sealed.ciphertext).contains(Data(value)) && !Data(sealed.wrappedDataKey).contains(Data(value)))
        for (other, what) in [
            (context("github/other"), "another path"), (context(version: 2), "another version"), (context(org: "globex"), "another org"),
        ] {
            #expect(throws: EnvelopeError.self, "\(what)") { try sealed.open(with: v1, context: other, record: "r") }
        }
        let otherKey = OrgKey(org: "acme", version: 1, key: SymmetricKey(size: .bits256))
        #expect(throws: EnvelopeError.self, "another org key") { try sealed.open(with: otherKey, context: context(), record: "r") }
    }

    @Test func oneAlteredByteAnywhereFailsWithAnErrorNamingTheRecord() throws {
        let sealed = try Envelope.seal(value, under: v1, context: context())
        for index in [0, 12, sealed.ciphertext.count - 1] {
            var altered = sealed
            altered.ciphertext[index] ^= 0x01
            #expect { try altered.open(with: v1, context: context(), record: "secret 'github/token' version 1 of org 'acme'") } throws: {
                ($0 as? EnvelopeError)?.description.contains("secret 'github/token' version 1 of org 'acme'") == true
            }
        }
        var wrapped = sealed
        wrapped.wrappedDataKey[20] ^= 0x80
        #expect(throws: EnvelopeError.self) { try wrapped.open(with: v1, context: context(), record: "r") }
    }

    @Test func recordsSwappedBetweenEachOtherDoNotOpen() throws {
        let first = try Envelope.seal(value, under: v1, context: context("a"))
        let second = try Envelope.seal(Array("other".utf8), under: v1, context: context("b"))
        var swappedKeys = first
        swappedKeys.wrappedDataKey = second.wrappedDataKey
        #expect(throws: EnvelopeError.self, "a data key from another record") { try swappedKeys.open(with: v1, context: context("a"), record: "r") }
        #expect(throws: EnvelopeError.self, "a whole record moved") { try second.open(with: v1, context: context("a"), record: "r") }
        #expect(first.wrappedDataKey != second.wrappedDataKey, "every record has its own data key")
    }

    @Test func rewrappingMovesTheDataKeyToTheNewOrgKeyAndKeepsTheValue() throws {
        let v2 = OrgKey(org: "acme", version: 2, key: SymmetricKey(size: .bits256))
        let sealed = try Envelope.seal(value, under: v1, context: context())
        let moved = try sealed.rewrapped(from: v1, to: v2, context: context(), record: "r")
        #expect(moved.ciphertext == sealed.ciphertext && moved.orgKeyVersion == 2)
        #expect(try moved.open(with: v2, context: context(), record: "r") == value)
        #expect(throws: EnvelopeError.self, "the old org key no longer opens it") { try moved.open(with: v1, context: context(), record: "r") }
    }

    @Test func theRootBindsAWrappedOrgKeyToItsOrgVersionAndBinding() async throws {
        let root = LocalKeyProvider(root: SymmetricKey(size: .bits256))
        let raw = Array(repeating: UInt8(9), count: 32)
        let wrapped = try await root.wrap(raw, context: OrgKey.wrappingContext(org: "acme", version: 1, bound: true))
        #expect(try await root.unwrap(wrapped, context: OrgKey.wrappingContext(org: "acme", version: 1, bound: true)) == raw)
        await #expect(throws: (any Error).self) {
            try await root.unwrap(wrapped, context: OrgKey.wrappingContext(org: "globex", version: 1, bound: true))
        }
        await #expect(throws: (any Error).self) {
            try await root.unwrap(wrapped, context: OrgKey.wrappingContext(org: "acme", version: 2, bound: true))
        }
        await #expect(throws: (any Error).self, "a bound key's row changed to say it is not bound") {
            try await root.unwrap(wrapped, context: OrgKey.wrappingContext(org: "acme", version: 1, bound: false))
        }
        let other = LocalKeyProvider(root: SymmetricKey(size: .bits256))
        #expect(other.keyID != root.keyID && root.keyID.hasPrefix("local:"))
        await #expect(throws: (any Error).self) {
            try await other.unwrap(wrapped, context: OrgKey.wrappingContext(org: "acme", version: 1, bound: true))
        }
    }

    @Test func aBoundKeyDependsOnItsShare() {
        let key = OrgKey(org: "acme", version: 1, key: SymmetricKey(size: .bits256))
        let share = Array(repeating: UInt8(3), count: 32), another = Array(repeating: UInt8(4), count: 32)
        let bytes = { (key: OrgKey) in key.key.withUnsafeBytes { Array($0) } }
        #expect(bytes(key.bound(to: share)) == bytes(key.bound(to: share)), "the same share gives the same key")
        #expect(bytes(key.bound(to: share)) != bytes(key.bound(to: another)), "another share, another key")
        #expect(bytes(key.bound(to: share)) != bytes(key), "never the unwrapped key itself")
        var moved = key
        moved.version = 2
        #expect(bytes(moved.bound(to: share)) != bytes(key.bound(to: share)), "bound to its version too")
    }

    @Test func aPassphraseDerivesTheSameRootWithItsSaltAndAnotherWithout() throws {
        let salt = Array(repeating: UInt8(1), count: 32)
        let a = try LocalKeyProvider(passphrase: "correct horse battery staple", salt: salt)
        let b = try LocalKeyProvider(passphrase: "correct horse battery staple", salt: salt)
        let c = try LocalKeyProvider(passphrase: "correct horse battery staple", salt: Array(repeating: UInt8(2), count: 32))
        #expect(a.keyID == b.keyID && a.keyID != c.keyID)
        #expect(throws: KeyProviderError.self, "too short") { try LocalKeyProvider(passphrase: "short", salt: salt) }
        #expect(throws: KeyProviderError.self) { try LocalKeyProvider(base64: "bm90IDMyIGJ5dGVz", variable: "WARDEN_VAULT_KEY") }
    }

    @Test func cachedOrgKeysExpireAndAreDroppedOnRotation() {
        var cache = OrgKeyCache<ContinuousClock.Instant>(lifetime: .seconds(60))
        let now = ContinuousClock.now
        cache.store(v1, isCurrent: true, now: now)
        #expect(cache.currentVersion(of: "acme", now: now) == 1 && cache.key(org: "acme", version: 1, now: now) != nil)
        #expect(cache.key(org: "acme", version: 1, now: now + .seconds(61)) == nil, "expired")
        #expect(cache.count(now: now) == 1)
        cache.drop(org: "acme")
        #expect(cache.key(org: "acme", version: 1, now: now) == nil && cache.currentVersion(of: "acme", now: now) == nil)
    }

    @Test func pathsAreCheckedWithClearErrors() {
        for good in ["github/token", "a", "prod/db.password", "x_y-z/1/2/3"] { #expect(throws: Never.self) { try SecretPath.validate(good) } }
        for bad in ["", "/lead", "trail/", "a//b", "../etc", "a/./b", "sp ace", "new\nline", String(repeating: "a", count: 257), "1/2/3/4/5/6/7/8/9"]
        {
            #expect(throws: ServiceError.self, "\(bad.prefix(20))") { try SecretPath.validate(bad) }
        }
    }
}
