import Foundation

/// A C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint): origin, tree size, base64 root hash, each on
/// its own line. It is the text of the signed note the audit log publishes.
public struct Checkpoint: Sendable, Equatable {
    public let origin: String
    public let size: Int64
    public let rootHash: [UInt8]

    public init(origin: String, size: Int64, rootHash: [UInt8]) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
    }

    public var body: String { "\(origin)\n\(size)\n\(Data(rootHash).base64EncodedString())\n" }

    /// Parses a checkpoint body; extension lines after the root are allowed and ignored, as the spec permits.
    public init(body: String) throws(SignedNoteError) {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        guard body.hasSuffix("\n"), lines.count >= 4, !lines[0].isEmpty else {
            throw .malformed("a checkpoint has an origin, a size and a root hash line")
        }
        let sizeText = String(lines[1])
        guard let size = Int64(sizeText), size >= 0, String(size) == sizeText else {
            throw .malformed("the tree size is not a decimal number without leading zeros")
        }
        guard let root = Data(base64Encoded: String(lines[2])), root.count == 32 else {
            throw .malformed("the root hash is not base64 of 32 bytes")
        }
        self.init(origin: String(lines[0]), size: size, rootHash: Array(root))
    }
}

/// The service's checkpoint key: one Ed25519 seed (`CONSENTD_SIGNING_KEY`) and one note key name per tenant log,
/// equal to its origin `<prefix>/<tenant>`, so each tenant's verifier key names exactly its own log.
public struct CheckpointSigner: Sendable {
    private let seed: SecretBytes
    public let originPrefix: String

    public static let defaultOriginPrefix = "consentledger"

    public init(seed: SecretBytes, originPrefix: String = CheckpointSigner.defaultOriginPrefix) throws(SignedNoteError)
    {
        guard SignedNote.isValidKeyName(originPrefix) else { throw .invalidKeyName }
        _ = try NoteSigner(name: originPrefix, seed: seed.bytes)
        self.seed = seed
        self.originPrefix = originPrefix
    }

    public func origin(for tenant: String) -> String { "\(originPrefix)/\(tenant)" }

    public func signer(for tenant: String) throws(SignedNoteError) -> NoteSigner {
        try NoteSigner(name: origin(for: tenant), seed: seed.bytes)
    }

    public var publicKey: [UInt8] {
        // The seed was checked in init.
        (try? NoteSigner(name: originPrefix, seed: seed.bytes).publicKey) ?? []
    }

    /// The signed note for a tenant's tree of `size` leaves with `rootHash`.
    public func sign(tenant: String, size: Int64, rootHash: [UInt8]) throws -> String {
        let checkpoint = Checkpoint(origin: origin(for: tenant), size: size, rootHash: rootHash)
        return try signer(for: tenant).sign(checkpoint.body)
    }
}
