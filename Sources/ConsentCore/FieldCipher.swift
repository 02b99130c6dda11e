import Crypto
import Foundation

/// AES-256-GCM for personal data at rest and for wrapping keys. The context is authenticated but not stored: it
/// names the row and column a ciphertext belongs to, so a ciphertext copied into another row does not open.
public enum FieldCipher {
    public struct OpenFailed: Error, CustomStringConvertible {
        public var description: String { "a ciphertext did not authenticate under its key and context" }
    }

    /// nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
    public static func seal(_ plaintext: some DataProtocol, key: SymmetricKey, context: String) -> [UInt8] {
        // AES-GCM with a fresh random nonce cannot fail for a 256-bit key and inputs of this size.
        let box = try! AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        return Array(box.combined!)
    }

    public static func open(_ sealed: [UInt8], key: SymmetricKey, context: String) throws(OpenFailed) -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
        } catch {
            throw OpenFailed()
        }
    }

    /// A new data key wrapped by `master`; returns both.
    public static func newWrappedKey(master: SymmetricKey, context: String) -> (key: SymmetricKey, wrapped: [UInt8]) {
        let key = SymmetricKey(size: .bits256)
        let wrapped = key.withUnsafeBytes { seal(Array($0), key: master, context: context) }
        return (key, wrapped)
    }

    public static func unwrapKey(_ wrapped: [UInt8], master: SymmetricKey, context: String) throws(OpenFailed)
        -> SymmetricKey
    {
        let bytes = try open(wrapped, key: master, context: context)
        guard bytes.count == 32 else { throw OpenFailed() }
        return SymmetricKey(data: bytes)
    }
}

/// How a subject is found without storing who they are: HMAC-SHA256 under the tenant's blind-index key of the
/// channel and the normalised identifier. The same person on two channels has two unrelated indexes.
public enum BlindIndex {
    public static func compute(_ subject: SubjectIdentifier, key: SymmetricKey) -> [UInt8] {
        var message = Array(subject.channel.rawValue.utf8)
        message.append(0)
        message.append(contentsOf: subject.value.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    /// The same for many subjects under one key: the key is absorbed once and the keyed state copied for each.
    public static func compute(_ subjects: [SubjectIdentifier], key: SymmetricKey) -> [[UInt8]] {
        let keyed = HMAC<SHA256>(key: key)
        var message: [UInt8] = []
        return subjects.map { subject in
            message.removeAll(keepingCapacity: true)
            message.append(contentsOf: subject.channel.rawValue.utf8)
            message.append(0)
            message.append(contentsOf: subject.value.utf8)
            var hmac = keyed
            hmac.update(data: message)
            return Array(hmac.finalize())
        }
    }
}

/// The suppression list's entry for a person: HMAC-SHA256 of the channel and the normalised identifier under the
/// tenant's suppression key. That key is not the blind-index key, so an entry matches nothing in `subjects` and
/// erasing the blind index really does unlink the person from everything else stored.
public enum SuppressionHash {
    public static func compute(_ subject: SubjectIdentifier, key: SymmetricKey) -> [UInt8] {
        var message = Array("suppression".utf8)
        message.append(0)
        message.append(contentsOf: subject.channel.rawValue.utf8)
        message.append(0)
        message.append(contentsOf: subject.value.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }
}

/// Names a master key without revealing it: the first 8 bytes of a domain-separated SHA-256. Stored beside each
/// wrapped key, so a server knows which configured master opens it and rotation knows what is left to re-wrap.
public enum MasterKeyID {
    public static func of(_ master: SymmetricKey) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("consentledger master key id".utf8) + [0])
        master.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize().prefix(8))
    }
}
