import Foundation
import Testing

@testable import ConsentCore

/// Builds a small rulebook in which every content rule has the given
/// patterns for all six languages, with overrides per rule.
private func rulebook(
    version: String = "test.1",
    overrides: [String: [String: Any]] = [:],
    dropRule: String? = nil,
    extraRules: [[String: Any]] = []
) throws -> Data {
    var rules: [[String: Any]] = []
    for rule in TemplateLintRule.contentRules where rule.rawValue != dropRule {
        var patterns: [String: [String]] = [:]
        for language in TemplateLinter.supportedLanguages {
            patterns[language] = ["zzz-\(rule.rawValue)-\(language)"]
        }
        var entry: [String: Any] = ["id": rule.rawValue, "patterns": patterns]
        for (key, value) in overrides[rule.rawValue] ?? [:] { entry[key] = value }
        rules.append(entry)
    }
    rules.append(contentsOf: extraRules)
    return try JSONSerialization.data(withJSONObject: ["version": version, "source": "test", "rules": rules])
}

private func allLanguages(_ patterns: [String]) -> [String: [String]] {
    Dictionary(uniqueKeysWithValues: TemplateLinter.supportedLanguages.map { ($0, patterns) })
}

/// Index of `needle` in `haystack` counted in Unicode scalars.
private func scalarOffset(of needle: String, in haystack: String) -> Int? {
    guard let range = haystack.range(of: needle) else { return nil }
    return haystack.unicodeScalars.distance(from: haystack.unicodeScalars.startIndex, to: range.lowerBound)
}

@Suite("TemplateLinter engine")
struct TemplateLinterEngineTests {
    private func linter(_ overrides: [String: [String: Any]] = [:]) throws -> TemplateLinter {
        try TemplateLinter(rulebook: rulebook(overrides: overrides))
    }

    @Test func offsetsAreUnicodeScalarsWithAccentsAndEmoji() throws {
        let linter = try linter(["promotion": ["patterns": allLanguages(["buy now"])]])
        // Emoji with ZWJ sequence, precomposed and decomposed accents before the match.
        let body = "Café 👩‍👩‍👧 e\u{301}te\u{301} 🇮🇹 — BUY NOW!"
        let findings = linter.lint(isUtility: true, language: "en", body: body, headerFormat: nil)
        #expect(findings.count == 1)
        let finding = try #require(findings.first)
        let expectedStart = try #require(scalarOffset(of: "BUY NOW", in: body))
        #expect(finding.start == expectedStart)
        #expect(finding.end == expectedStart + 7)
        #expect(finding.excerpt == "BUY NOW")
        let scalars = Array(body.unicodeScalars)
        #expect(String(String.UnicodeScalarView(scalars[finding.start..<finding.end])) == finding.excerpt)
    }

    @Test func diacriticFoldingMapsBackToAccentedOriginal() throws {
        let linter = try linter([
            "re_engagement": ["patterns": allLanguages(["vous nous manquez", "ca fait longtemps"])]
        ])
        let body = "🎉 Ça fait LONGTEMPS, Zoé! Vous nous manquez 💛"
        let findings = linter.lint(isUtility: true, language: "fr_FR", body: body, headerFormat: nil)
        #expect(findings.map(\.excerpt) == ["Ça fait LONGTEMPS", "Vous nous manquez"])
        #expect(findings.first?.start == 2)
        #expect(findings.first?.end == 2 + "Ça fait LONGTEMPS".unicodeScalars.count)
        #expect(findings.allSatisfy { $0.language == "fr" && $0.rule == .reEngagement })
        // Decomposed (NFD) accents in the body: excerpt keeps the combining mark.
        let nfd = "C\u{327}a fait longtemps"
        let second = linter.lint(isUtility: true, language: "fr", body: nfd, headerFormat: nil)
        #expect(second.count == 1)
        #expect(second.first?.start == 0)
        #expect(second.first?.end == nfd.unicodeScalars.count)
        #expect(second.first?.excerpt == nfd)
    }

    @Test func patternsWithAccentsMatchUnaccentedBodyAndCase() throws {
        let linter = try linter(["rating_request": ["patterns": allLanguages(["valóranos", "Straße"])]])
        let a = linter.lint(isUtility: true, language: "es", body: "VALORANOS hoy", headerFormat: nil)
        #expect(a.map(\.excerpt) == ["VALORANOS"])
        let b = linter.lint(isUtility: true, language: "de", body: "die STRASSE", headerFormat: nil)
        #expect(b.map(\.excerpt) == ["STRASSE"])
        #expect(b.first?.start == 4 && b.first?.end == 11)
        let c = linter.lint(isUtility: true, language: "de", body: "die Straße!", headerFormat: nil)
        #expect(c.map(\.excerpt) == ["Straße"])
        #expect(c.first?.end == 10)
    }

    @Test func whitespaceRunsAndCurlyApostrophesAreNormalised() throws {
        let linter = try linter(["re_engagement": ["patterns": allLanguages(["it's been a while"])]])
        let body = "Hi 😀\nIt’s   been\n\na while!"
        let findings = linter.lint(isUtility: true, language: "en", body: body, headerFormat: nil)
        #expect(findings.count == 1)
        #expect(findings.first?.excerpt == "It’s   been\n\na while")
        #expect(findings.first?.start == 5)
        #expect(findings.first?.end == body.unicodeScalars.count - 1)
    }

    @Test func wholeWordMatchingOnly() throws {
        let linter = try linter(["promotion": ["patterns": allLanguages(["discount"])]])
        let findings = linter.lint(isUtility: true, language: "en", body: "your discounted item", headerFormat: nil)
        #expect(findings.isEmpty)
    }

    @Test func exceptVetoesOverlappingMatchOnly() throws {
        let linter = try linter([
            "share_request": [
                "patterns": allLanguages(["share (?:this|it)"]),
                "except": ["en": ["do not share"]],
            ]
        ])
        let vetoed = linter.lint(
            isUtility: true, language: "en",
            body: "Do not share this code with anyone.", headerFormat: nil)
        #expect(vetoed.isEmpty)
        let kept = linter.lint(
            isUtility: true, language: "en",
            body: "Do not share your PIN. But share this with friends!", headerFormat: nil)
        #expect(kept.map(\.excerpt) == ["share this"])
        // The veto is per language: Italian has no except list here.
        let italian = linter.lint(
            isUtility: true, language: "it",
            body: "do not share this", headerFormat: nil)
        #expect(italian.count == 1)
    }

    @Test func overlappingMatchesOfOneRuleAreMerged() throws {
        let linter = try linter(["promotion": ["patterns": allLanguages(["buy now", "now only", "buy"])]])
        let findings = linter.lint(isUtility: true, language: "en", body: "buy now only today", headerFormat: nil)
        #expect(findings.count == 1)
        #expect(findings.first?.excerpt == "buy now only")
    }

    @Test func findingsSortedByStartThenRule() throws {
        let linter = try linter([
            "survey": ["patterns": allLanguages(["quick poll"])],
            "promotion": ["patterns": allLanguages(["quick poll", "win"])],
        ])
        let findings = linter.lint(isUtility: true, language: "en", body: "quick poll: win!", headerFormat: nil)
        #expect(findings.map(\.rule) == [.promotion, .survey, .promotion])
        #expect(findings.map(\.start) == [0, 0, 12])
    }

    @Test func nonUtilityGetsNoFindings() throws {
        let linter = try linter(["promotion": ["patterns": allLanguages(["buy now"])]])
        let findings = linter.lint(isUtility: false, language: "en", body: "Buy now!", headerFormat: .image)
        #expect(findings.isEmpty)
    }

    @Test func mediaHeader() throws {
        let linter = try linter()
        for format in TemplateHeaderFormat.allCases {
            let findings = linter.lint(isUtility: true, language: "it", body: "Ordine spedito", headerFormat: format)
            if format == .image || format == .video {
                #expect(
                    findings == [
                        TemplateLintFinding(
                            rule: .mediaHeader, language: "it",
                            excerpt: "header: \(format.rawValue)", start: 0, end: 0)
                    ])
            } else {
                #expect(findings.isEmpty)
            }
        }
        #expect(linter.lint(isUtility: true, language: "it", body: "x", headerFormat: nil).isEmpty)
    }

    @Test func languageResolutionAndFallback() throws {
        #expect(TemplateLinter.resolveLanguage("pt_BR") == "pt")
        #expect(TemplateLinter.resolveLanguage("en-US") == "en")
        #expect(TemplateLinter.resolveLanguage("DE") == "de")
        #expect(TemplateLinter.resolveLanguage("nl") == "en")
        #expect(TemplateLinter.resolveLanguage("") == "en")
        let linter = try linter([
            "promotion": [
                "patterns": [
                    "en": ["buy now"], "it": ["compra ora"], "de": ["jetzt kaufen"],
                    "fr": ["achetez"], "es": ["compra ya"], "pt": ["compre ja"],
                ]
            ]
        ])
        let dutch = linter.lint(isUtility: true, language: "nl_NL", body: "Buy now! compra ora", headerFormat: nil)
        #expect(dutch.map(\.excerpt) == ["Buy now"])
        #expect(dutch.first?.language == "en")
        let brazil = linter.lint(isUtility: true, language: "pt_BR", body: "Buy now! Compre já", headerFormat: nil)
        #expect(brazil.map(\.excerpt) == ["Compre já"])
        #expect(brazil.first?.language == "pt")
    }

    @Test func malformedRulebooks() throws {
        #expect(throws: TemplateLintError.unknownRule("spam")) {
            try TemplateLinter(rulebook: rulebook(extraRules: [["id": "spam", "patterns": allLanguages(["x"])]]))
        }
        do {
            _ = try TemplateLinter(rulebook: rulebook(overrides: ["survey": ["patterns": allLanguages(["(unclosed"])]]))
            Issue.record("expected invalidPattern")
        } catch let TemplateLintError.invalidPattern(rule, language, pattern, _) {
            #expect(rule == "survey" && pattern == "(unclosed" && TemplateLinter.supportedLanguages.contains(language))
        }
        #expect(throws: TemplateLintError.missingLanguage(rule: "promotion", language: "pt")) {
            var patterns = allLanguages(["x"])
            patterns["pt"] = nil
            return try TemplateLinter(rulebook: rulebook(overrides: ["promotion": ["patterns": patterns]]))
        }
        #expect(throws: TemplateLintError.unknownLanguage(rule: "promotion", language: "nl")) {
            var patterns = allLanguages(["x"])
            patterns["nl"] = ["x"]
            return try TemplateLinter(rulebook: rulebook(overrides: ["promotion": ["patterns": patterns]]))
        }
        #expect(throws: TemplateLintError.missingRule("survey")) {
            try TemplateLinter(rulebook: rulebook(dropRule: "survey"))
        }
        #expect(throws: TemplateLintError.missingVersion) {
            try TemplateLinter(rulebook: rulebook(version: " "))
        }
        #expect(throws: TemplateLintError.self) {
            try TemplateLinter(rulebook: Data("{not json".utf8))
        }
        do {
            _ = try TemplateLinter(rulebook: rulebook(overrides: ["survey": ["patterns": allLanguages(["a[b"])]]))
            Issue.record("expected an error")
        } catch let error as TemplateLintError {
            #expect(error.description.contains("survey"))
            #expect(error.description.contains("a[b"))
        }
    }

    @Test func bundledRulebookLoadsAndKeepsOrderUpdatesClean() throws {
        let linter = try TemplateLinter.bundled()
        #expect(linter.version == "2026-12-01.2")
        let clean = [
            "Your refund for the discounted item was issued.",
            "The offer you accepted is confirmed.",
            "Your weekly meal box ships Tuesday.",
            "Your monthly statement is ready.",
            "{{1}} is your code. Do not share this code with anyone.",
            "Your review appointment is on {{1}}.",
            "Come back to counter 4 to collect your parcel.",
            "The price of your booking changed.",
        ]
        for body in clean {
            let findings = linter.lint(isUtility: true, language: "en_GB", body: body, headerFormat: .document)
            #expect(findings.isEmpty, "unexpected findings for \(body): \(findings)")
        }
        let flagged = linter.lint(
            isUtility: true, language: "en",
            body: "We miss you! Come back and get 20% off with code BACK20.", headerFormat: nil)
        #expect(Set(flagged.map(\.rule)).isSuperset(of: [.reEngagement, .promotion]))
    }
}
