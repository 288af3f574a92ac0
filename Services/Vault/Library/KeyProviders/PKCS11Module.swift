import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The few PKCS#11 calls the vault needs, through the module's function list (loaded with dlopen,
/// so no header or library is needed at build time). Types as the standard defines them for
/// 64-bit Linux: `CK_ULONG` is `unsigned long`, `CK_BBOOL` one byte.
final class PKCS11Module: @unchecked Sendable {
    typealias RV = UInt

    struct Attribute {
        var type: UInt
        var value: UnsafeMutableRawPointer?
        var length: UInt
    }

    struct Mechanism {
        var mechanism: UInt
        var parameter: UnsafeMutableRawPointer?
        var length: UInt
    }

    struct GCMParameters {
        var iv: UnsafeMutablePointer<UInt8>?
        var ivLength: UInt
        var ivBits: UInt
        var aad: UnsafeMutablePointer<UInt8>?
        var aadLength: UInt
        var tagBits: UInt
    }

    // Constants of the standard (PKCS#11 v2.40).
    static let ok: RV = 0
    static let userAlreadyLoggedIn: RV = 0x100
    static let alreadyInitialized: RV = 0x191
    static let pinIncorrect: RV = 0xa0
    static let classSecretKey: UInt = 4
    static let keyTypeAES: UInt = 0x1f
    static let attributeClass: UInt = 0, attributeToken: UInt = 1, attributePrivate: UInt = 2, attributeLabel: UInt = 3
    static let attributeKeyType: UInt = 0x100, attributeSensitive: UInt = 0x103, attributeEncrypt: UInt = 0x104, attributeDecrypt: UInt = 0x105
    static let attributeValueLength: UInt = 0x161, attributeExtractable: UInt = 0x162
    static let mechanismAESKeyGen: UInt = 0x1080, mechanismAESGCM: UInt = 0x1087

    let path: String
    private let functions: UnsafeRawPointer

    init(path: String) throws(KeyProviderError) {
        self.path = path
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw KeyProviderError(provider: "pkcs11", "cannot load the PKCS#11 module \(path): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw KeyProviderError(provider: "pkcs11", "\(path) is not a PKCS#11 module (no C_GetFunctionList)")
        }
        typealias GetFunctionList = @convention(c) (UnsafeMutablePointer<UnsafeRawPointer?>) -> RV
        var list: UnsafeRawPointer?
        let rv = unsafeBitCast(symbol, to: GetFunctionList.self)(&list)
        guard rv == Self.ok, let list else { throw KeyProviderError(provider: "pkcs11", "C_GetFunctionList failed (\(Self.code(rv)))") }
        functions = list
        // Threads of our own, and the OS's locking (CKF_OS_LOCKING_OK).
        var arguments: [UInt] = [0, 0, 0, 0, 2, 0]
        typealias Initialize = @convention(c) (UnsafeMutableRawPointer?) -> RV
        let initialized = arguments.withUnsafeMutableBytes { function(0, as: Initialize.self)($0.baseAddress) }
        guard initialized == Self.ok || initialized == Self.alreadyInitialized else { throw failure("C_Initialize", initialized) }
    }

    /// Function `index` of the list: after the 2-byte version, pointer-aligned.
    private func function<F>(_ index: Int, as type: F.Type) -> F {
        unsafeBitCast(functions.load(fromByteOffset: 8 + 8 * index, as: UnsafeRawPointer.self), to: type)
    }

    func slot(withTokenLabel label: String) throws(KeyProviderError) -> UInt {
        typealias GetSlotList = @convention(c) (UInt8, UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>) -> RV
        typealias GetTokenInfo = @convention(c) (UInt, UnsafeMutableRawPointer) -> RV
        var count: UInt = 0
        var rv = function(4, as: GetSlotList.self)(1, nil, &count)
        guard rv == Self.ok else { throw failure("C_GetSlotList", rv) }
        var slots = [UInt](repeating: 0, count: Int(count))
        rv = slots.withUnsafeMutableBufferPointer { function(4, as: GetSlotList.self)(1, $0.baseAddress, &count) }
        guard rv == Self.ok else { throw failure("C_GetSlotList", rv) }
        var labels: [String] = []
        for slot in slots.prefix(Int(count)) {
            var info = [UInt8](repeating: 0, count: 512)
            guard info.withUnsafeMutableBytes({ function(6, as: GetTokenInfo.self)(slot, $0.baseAddress!) }) == Self.ok else { continue }
            let name = String(decoding: info.prefix(32), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if name == label { return slot }
            labels.append(name)
        }
        throw KeyProviderError(
            provider: "pkcs11", "no token labelled '\(label)' in \(path) (tokens: \(labels.isEmpty ? "none" : labels.joined(separator: ", ")))")
    }

    func openSession(slot: UInt) throws(KeyProviderError) -> UInt {
        typealias OpenSession = @convention(c) (UInt, UInt, UnsafeMutableRawPointer?, UnsafeRawPointer?, UnsafeMutablePointer<UInt>) -> RV
        var session: UInt = 0
        // CKF_SERIAL_SESSION | CKF_RW_SESSION: a key may have to be created.
        let rv = function(12, as: OpenSession.self)(slot, 4 | 2, nil, nil, &session)
        guard rv == Self.ok else { throw failure("C_OpenSession", rv) }
        return session
    }

    func login(session: UInt, pin: String) throws(KeyProviderError) {
        typealias Login = @convention(c) (UInt, UInt, UnsafePointer<UInt8>?, UInt) -> RV
        let bytes = Array(pin.utf8)
        let rv = bytes.withUnsafeBufferPointer { function(18, as: Login.self)(session, 1, $0.baseAddress, UInt($0.count)) }
        guard rv == Self.ok || rv == Self.userAlreadyLoggedIn else {
            if rv == Self.pinIncorrect { throw KeyProviderError(provider: "pkcs11", "the token refused the PIN (CKR_PIN_INCORRECT)") }
            throw failure("C_Login", rv)
        }
    }

    func findSecretKey(session: UInt, label: String) throws(KeyProviderError) -> UInt? {
        typealias FindInit = @convention(c) (UInt, UnsafeMutableRawPointer?, UInt) -> RV
        typealias Find = @convention(c) (UInt, UnsafeMutablePointer<UInt>, UInt, UnsafeMutablePointer<UInt>) -> RV
        typealias FindFinal = @convention(c) (UInt) -> RV
        var keyClass = Self.classSecretKey
        var labelBytes = Array(label.utf8)
        let rv: RV = withUnsafeMutableBytes(of: &keyClass) { classBytes in
            labelBytes.withUnsafeMutableBytes { labelPointer in
                var template = [
                    Attribute(type: Self.attributeClass, value: classBytes.baseAddress, length: UInt(classBytes.count)),
                    Attribute(type: Self.attributeLabel, value: labelPointer.baseAddress, length: UInt(labelPointer.count)),
                ]
                return template.withUnsafeMutableBytes { function(26, as: FindInit.self)(session, $0.baseAddress, 2) }
            }
        }
        guard rv == Self.ok else { throw failure("C_FindObjectsInit", rv) }
        var handles = [UInt](repeating: 0, count: 2)
        var found: UInt = 0
        let search = handles.withUnsafeMutableBufferPointer { function(27, as: Find.self)(session, $0.baseAddress!, 2, &found) }
        _ = function(28, as: FindFinal.self)(session)
        guard search == Self.ok else { throw failure("C_FindObjects", search) }
        guard found <= 1 else { throw KeyProviderError(provider: "pkcs11", "more than one secret key is labelled '\(label)': name one") }
        return found == 1 ? handles[0] : nil
    }

    func generateAESKey(session: UInt, label: String) throws(KeyProviderError) -> UInt {
        typealias GenerateKey = @convention(c) (UInt, UnsafeMutableRawPointer, UnsafeMutableRawPointer, UInt, UnsafeMutablePointer<UInt>) -> RV
        var values: (keyClass: UInt, keyType: UInt, length: UInt) = (Self.classSecretKey, Self.keyTypeAES, 32)
        var yes: UInt8 = 1, no: UInt8 = 0
        var labelBytes = Array(label.utf8)
        var handle: UInt = 0
        let rv: RV = withUnsafeMutableBytes(of: &values) { numbers in
            let base = numbers.baseAddress!
            return labelBytes.withUnsafeMutableBytes { labelPointer in
                withUnsafeMutablePointer(to: &yes) { yesPointer in
                    withUnsafeMutablePointer(to: &no) { noPointer in
                        var template = [
                            Attribute(type: Self.attributeClass, value: base, length: 8),
                            Attribute(type: Self.attributeKeyType, value: base + 8, length: 8),
                            Attribute(type: Self.attributeValueLength, value: base + 16, length: 8),
                            Attribute(type: Self.attributeToken, value: yesPointer, length: 1),
                            Attribute(type: Self.attributePrivate, value: yesPointer, length: 1),
                            Attribute(type: Self.attributeSensitive, value: yesPointer, length: 1),
                            Attribute(type: Self.attributeExtractable, value: noPointer, length: 1),
                            Attribute(type: Self.attributeEncrypt, value: yesPointer, length: 1),
                            Attribute(type: Self.attributeDecrypt, value: yesPointer, length: 1),
                            Attribute(type: Self.attributeLabel, value: labelPointer.baseAddress, length: UInt(labelPointer.count)),
                        ]
                        var mechanism = Mechanism(mechanism: Self.mechanismAESKeyGen, parameter: nil, length: 0)
                        let count = UInt(template.count)
                        return withUnsafeMutableBytes(of: &mechanism) { mechanismBytes in
                            template.withUnsafeMutableBytes {
                                function(58, as: GenerateKey.self)(session, mechanismBytes.baseAddress!, $0.baseAddress!, count, &handle)
                            }
                        }
                    }
                }
            }
        }
        guard rv == Self.ok else { throw failure("C_GenerateKey", rv) }
        return handle
    }

    func random(session: UInt, count: Int) throws(KeyProviderError) -> [UInt8] {
        typealias GenerateRandom = @convention(c) (UInt, UnsafeMutablePointer<UInt8>, UInt) -> RV
        var bytes = [UInt8](repeating: 0, count: count)
        let rv = bytes.withUnsafeMutableBufferPointer { function(64, as: GenerateRandom.self)(session, $0.baseAddress!, UInt(count)) }
        guard rv == Self.ok else { throw failure("C_GenerateRandom", rv) }
        return bytes
    }

    func encryptGCM(session: UInt, key: UInt, iv: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws(KeyProviderError) -> [UInt8] {
        try crypt(
            initIndex: 29, index: 30, name: "C_Encrypt", session: session, key: key, iv: iv, aad: aad, input: plaintext,
            outputCount: plaintext.count + 16)
    }

    func decryptGCM(session: UInt, key: UInt, iv: [UInt8], aad: [UInt8], ciphertext: [UInt8]) throws(KeyProviderError) -> [UInt8] {
        try crypt(
            initIndex: 33, index: 34, name: "C_Decrypt", session: session, key: key, iv: iv, aad: aad, input: ciphertext,
            outputCount: ciphertext.count)
    }

    /// One AES-GCM operation: `initIndex` is C_EncryptInit or C_DecryptInit, `index` the call.
    private func crypt(
        initIndex: Int, index: Int, name: String, session: UInt, key: UInt, iv: [UInt8], aad: [UInt8], input: [UInt8], outputCount: Int
    ) throws(KeyProviderError) -> [UInt8] {
        typealias CryptInit = @convention(c) (UInt, UnsafeMutableRawPointer, UInt) -> RV
        typealias Crypt = @convention(c) (UInt, UnsafeMutablePointer<UInt8>?, UInt, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt>) -> RV
        var iv = iv, aad = aad, input = input
        var output = [UInt8](repeating: 0, count: max(outputCount, 1))
        var produced = UInt(output.count)
        let (initialized, rv): (RV, RV) = iv.withUnsafeMutableBufferPointer { ivPointer in
            aad.withUnsafeMutableBufferPointer { aadPointer in
                var parameters = GCMParameters(
                    iv: ivPointer.baseAddress, ivLength: UInt(ivPointer.count), ivBits: UInt(ivPointer.count * 8), aad: aadPointer.baseAddress,
                    aadLength: UInt(aadPointer.count), tagBits: 128)
                return withUnsafeMutableBytes(of: &parameters) { parameterBytes in
                    var mechanism = Mechanism(
                        mechanism: Self.mechanismAESGCM, parameter: parameterBytes.baseAddress, length: UInt(parameterBytes.count))
                    let started = withUnsafeMutableBytes(of: &mechanism) { function(initIndex, as: CryptInit.self)(session, $0.baseAddress!, key) }
                    guard started == Self.ok else { return (started, started) }
                    let done = input.withUnsafeMutableBufferPointer { inputPointer in
                        output.withUnsafeMutableBufferPointer { outputPointer in
                            function(index, as: Crypt.self)(
                                session, inputPointer.baseAddress, UInt(inputPointer.count), outputPointer.baseAddress, &produced)
                        }
                    }
                    return (started, done)
                }
            }
        }
        guard initialized == Self.ok else { throw failure(name + "Init", initialized) }
        guard rv == Self.ok else { throw failure(name, rv) }
        return Array(output.prefix(Int(produced)))
    }

    private func failure(_ call: String, _ rv: RV) -> KeyProviderError {
        KeyProviderError(provider: "pkcs11", "\(call) failed in \(path) (\(Self.code(rv)))")
    }

    static func code(_ rv: RV) -> String { "CKR 0x" + String(rv, radix: 16) }
}
