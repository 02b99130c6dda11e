import ConsentCore
import Testing

@testable import ConsentServer

/// The erasure form's code (issue 21, finding 8): random, and accepted only for the person and session it was
/// shown for.
@Suite struct ErasureConfirmationTests {
    let anna = try! SubjectIdentifier("anna@example.com", channel: .email)
    let bruno = try! SubjectIdentifier("bruno@example.com", channel: .email)

    @Test func theCodeShownIsAcceptedInAnyCaseAndWithSpaces() {
        let issued = ErasureConfirmation.issue(for: anna, sessionSecret: "csrf-1")
        #expect(issued.code.count == 6 && issued.code.allSatisfy(ErasureConfirmation.alphabet.contains))
        for typed in [issued.code, issued.code.lowercased(), "  \(issued.code) "] {
            #expect(
                ErasureConfirmation.accepts(typed: typed, seal: issued.seal, subject: anna, sessionSecret: "csrf-1"))
        }
    }

    @Test func anythingElseIsRefused() {
        let issued = ErasureConfirmation.issue(for: anna, sessionSecret: "csrf-1")
        let wrong = String(issued.code.map { $0 == "A" ? "B" : "A" })
        let refusals: [(String, String, SubjectIdentifier, String)] = [
            (wrong, issued.seal, anna, "csrf-1"),
            (issued.code, issued.seal, bruno, "csrf-1"),  // another person's erasure
            (issued.code, issued.seal, anna, "csrf-2"),  // another session
            (".com", issued.seal, anna, "csrf-1"),  // the old confirmation
            (issued.code, "", anna, "csrf-1"),
            (issued.code, "zz" + issued.seal.dropFirst(2), anna, "csrf-1"),
            (issued.code, String(issued.seal.dropLast(2)), anna, "csrf-1"),
            (issued.code + "A", issued.seal, anna, "csrf-1"),
        ]
        for (typed, seal, subject, secret) in refusals {
            #expect(
                !ErasureConfirmation.accepts(typed: typed, seal: seal, subject: subject, sessionSecret: secret),
                "\(typed) for \(subject.value) in \(secret)")
        }
    }

    @Test func codesAreRandomAndUseTheUnambiguousAlphabet() {
        let codes = Set((0..<200).map { _ in ErasureConfirmation.issue(for: anna, sessionSecret: "s").code })
        #expect(codes.count == 200)
        let characters = Set(codes.joined())
        #expect(characters.isDisjoint(with: Set("01OIL")))
        #expect(characters.count > 20, "the whole alphabet is drawn from")
    }
}
