import ConsentCore
import Foundation
import Testing

@Suite struct SignedNoteTests {
    // The example of golang.org/x/mod/sumdb/note's documentation: an independent implementation's key and output.
    static let goSignerKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let goVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let goText =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let goNote =
        goText
        + "\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    static func goSeed() throws -> [UInt8] {
        let encoded = String(goSignerKey.split(separator: "+", maxSplits: 4)[4])
        let bytes = try #require(Data(base64Encoded: encoded))
        #expect(bytes.first == 0x01)
        return Array(bytes.dropFirst())
    }

    @Test func signingMatchesTheGoReferenceByteForByte() throws {
        let signer = try NoteSigner(name: "PeterNeumann", seed: try Self.goSeed())
        #expect(signer.verifier.verifierKey == Self.goVerifierKey)
        #expect(signer.keyHash.hexString == "c74f20a3")
        #expect(try signer.sign(Self.goText) == Self.goNote)
    }

    @Test func theGoReferenceNoteVerifies() throws {
        let verifier = try NoteVerifier(verifierKey: Self.goVerifierKey)
        #expect(try verifier.open(Self.goNote) == Self.goText)
    }

    /// The example of the C2SP signed-note specification itself.
    @Test func theSpecificationsExampleVerifies() throws {
        let verifier = try NoteVerifier(
            verifierKey: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        let note =
            "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
        #expect(try verifier.open(note) == "This is an example message.\n")
    }

    @Test func alteredNotesAndWrongKeysAreRejected() throws {
        let verifier = try NoteVerifier(verifierKey: Self.goVerifierKey)
        let altered = Self.goNote.replacingOccurrences(of: "cryptography", with: "cryptoqraphy")
        #expect(throws: SignedNoteError.badSignature("PeterNeumann")) { try verifier.open(altered) }
        let other = try NoteSigner(name: "PeterNeumann", seed: Array(repeating: 7, count: 32))
        #expect(throws: SignedNoteError.noSignatureByKey("PeterNeumann")) {
            try verifier.open(try other.sign(Self.goText))
        }
        #expect(throws: SignedNoteError.self) { try verifier.open(Self.goText) }
        #expect(throws: SignedNoteError.invalidKey) {
            try NoteVerifier(verifierKey: "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
        #expect(throws: SignedNoteError.invalidKeyName) {
            try NoteSigner(name: "a b", seed: Array(repeating: 7, count: 32))
        }
        #expect(throws: SignedNoteError.textMustEndInNewline) {
            try NoteSigner(name: "x", seed: Array(repeating: 7, count: 32)).sign("no newline")
        }
    }

    @Test func checkpointsRoundTripThroughASignedNote() throws {
        let seed = SecretBytes(Array(repeating: 42, count: 32))
        let signer = try CheckpointSigner(seed: seed, originPrefix: "consent.example")
        let root = MerkleTree.leafHash([1, 2, 3])
        let note = try signer.sign(tenant: "acme", size: 12, rootHash: root)
        #expect(
            note.hasPrefix(
                "consent.example/acme\n12\n\(Data(root).base64EncodedString())\n\n\u{2014} consent.example/acme "))
        let verifier = try signer.signer(for: "acme").verifier
        let checkpoint = try Checkpoint(body: try verifier.open(note))
        #expect(checkpoint == Checkpoint(origin: "consent.example/acme", size: 12, rootHash: root))
        // Another tenant's verifier key does not accept this tenant's checkpoint.
        #expect(throws: SignedNoteError.self) { try signer.signer(for: "other").verifier.open(note) }
        #expect(throws: SignedNoteError.self) { try Checkpoint(body: "o\n012\n\(Data(root).base64EncodedString())\n") }
        #expect(throws: SignedNoteError.self) { try Checkpoint(body: "o\n12\nAAAA\n") }
    }
}
