import Testing

@testable import ConsentCore

@Suite struct SubjectIdentifierTests {
    @Test(arguments: [
        ("+39 333 123 4567", "+393331234567"),
        ("0039 333-1234567", "+393331234567"),
        ("+1 (415) 555.2671", "+14155552671"),
        ("+44 [20] 7946-0958", "+442079460958"),
        ("+4915123456789", "+4915123456789"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ])
    func phoneNumbersNormaliseToE164(raw: String, expected: String) throws {
        for channel in [MessageChannel.whatsapp, .sms] {
            #expect(try SubjectIdentifier(raw, channel: channel).value == expected)
        }
    }

    @Test(arguments: [
        "333 123 4567",  // no international prefix
        "+0393331234567",  // country code starting with 0
        "+1234567",  // 7 digits
        "+1234567890123456",  // 16 digits
        "+39 333 123 456a",
        "+39/333/1234567",
        "",
        "+",
        "++393331234567",
        "+٣٩٣٣٣١٢٣٤٥٦٧",  // non-ASCII digits
    ])
    func invalidPhoneNumbersAreRefused(raw: String) {
        #expect(throws: SubjectIdentifier.Invalid.self) { try SubjectIdentifier(raw, channel: .whatsapp) }
    }

    @Test(arguments: [
        ("  Anna.Rossi@Example.COM ", "anna.rossi@example.com"),  // the local part too (EmailNormalisationTests)
        ("a@b.co", "a@b.co"),
        ("x+tag@Sub.Domain.It", "x+tag@sub.domain.it"),
    ])
    func emailDomainsAreLowerCased(raw: String, expected: String) throws {
        #expect(try SubjectIdentifier(raw, channel: .email).value == expected)
    }

    @Test(arguments: [
        "anna", "a@@b.com", "@b.com", "a@b", "a@b..com", "a b@c.com", "a@-b.com", "a@b.com@c.com", "a@b_c.com",
    ])
    func invalidEmailsAreRefused(raw: String) {
        #expect(throws: SubjectIdentifier.Invalid.self) { try SubjectIdentifier(raw, channel: .email) }
    }

    @Test func identifiersDoNotPrintThemselves() throws {
        let subject = try SubjectIdentifier("+393331234567", channel: .sms)
        #expect(!"\(subject)".contains("333"))
    }
}

@Suite struct ReplyKeywordTests {
    @Test(arguments: [
        "STOP", "stop", " Stop! ", "STOPALL", "Unsubscribe", "cancel", "END", "quit", "ANNULLA", "basta",
        "Disiscrivimi", "STOPP", "abmelden", "ARRÊT", "arret", "Arrêt.", "BAJA", "cancelar", "PARAR", "opt  out",
    ])
    func stopKeywordsWithdraw(message: String) {
        #expect(ReplyKeywords.isStop(message))
    }

    @Test(arguments: [
        "please stop", "don't stop the updates", "STOP sending me this", "stopper", "fine", "Fine", "ok", "yes",
        "", "s t o p", "unsubscribe me",
    ])
    func otherMessagesDoNot(message: String) {
        #expect(!ReplyKeywords.isStop(message))
    }

    @Test(arguments: ["YES", "yes.", "Sì", "SI", "si", "JA", "Oui", "SIM"])
    func confirmations(message: String) {
        #expect(ReplyKeywords.isConfirmation(message))
    }

    @Test(arguments: ["yes please stop", "no", "NEIN", "stop", "y"])
    func nonConfirmations(message: String) {
        #expect(!ReplyKeywords.isConfirmation(message))
    }
}
