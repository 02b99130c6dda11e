import Foundation

/// Content linter for WhatsApp Business utility message templates.
///
/// The linter is a value type built once from a versioned JSON rulebook; all
/// patterns are compiled in `init`. Matching is case- and
/// diacritics-insensitive: body and patterns are folded, and match offsets are
/// mapped back to Unicode-scalar offsets in the original body.
public struct TemplateLinter: Sendable {
    /// Languages every content rule must cover.
    public static let supportedLanguages: [String] = ["it", "en", "de", "fr", "es", "pt"]
    /// Language used for unknown language codes.
    public static let fallbackLanguage = "en"

    /// Version string of the loaded rulebook.
    public let version: String

    private let rules: [CompiledRule]

    /// Builds a linter from rulebook JSON. Throws `TemplateLintError` if the
    /// rulebook is malformed (bad regex, unknown rule id, missing language...).
    public init(rulebook: Data) throws {
        let book: RulebookFile
        do {
            book = try JSONDecoder().decode(RulebookFile.self, from: rulebook)
        } catch let error as DecodingError {
            throw TemplateLintError.malformedRulebook(Self.describe(error))
        } catch {
            throw TemplateLintError.malformedRulebook(String(describing: error))
        }
        guard !book.version.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw TemplateLintError.missingVersion
        }
        var compiled: [CompiledRule] = []
        var seen = Set<TemplateLintRule>()
        for entry in book.rules {
            guard let rule = TemplateLintRule(rawValue: entry.id) else {
                throw TemplateLintError.unknownRule(entry.id)
            }
            guard seen.insert(rule).inserted else {
                throw TemplateLintError.duplicateRule(entry.id)
            }
            // media_header is decided from the header format, not from text.
            if rule == .mediaHeader { continue }
            let patterns = entry.patterns ?? [:]
            let excepts = entry.except ?? [:]
            for language in patterns.keys.sorted() + excepts.keys.sorted()
            where !Self.supportedLanguages.contains(language) {
                throw TemplateLintError.unknownLanguage(rule: entry.id, language: language)
            }
            var byLanguage: [String: CompiledLanguage] = [:]
            for language in Self.supportedLanguages {
                guard let list = patterns[language], !list.isEmpty else {
                    throw TemplateLintError.missingLanguage(rule: entry.id, language: language)
                }
                byLanguage[language] = CompiledLanguage(
                    patterns: try list.map { try Self.compile($0, rule: entry.id, language: language) },
                    excepts: try (excepts[language] ?? []).map {
                        try Self.compile($0, rule: entry.id, language: language)
                    }
                )
            }
            compiled.append(CompiledRule(rule: rule, languages: byLanguage))
        }
        for rule in TemplateLintRule.contentRules where !seen.contains(rule) {
            throw TemplateLintError.missingRule(rule.rawValue)
        }
        self.version = book.version
        self.rules = compiled
    }

    /// Loads the rulebook shipped in the module bundle
    /// (`template-lint-rules.json`).
    public static func bundled() throws -> TemplateLinter {
        guard let url = Bundle.module.url(forResource: "template-lint-rules", withExtension: "json") else {
            throw TemplateLintError.rulebookNotFound("template-lint-rules.json")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TemplateLintError.rulebookNotFound("template-lint-rules.json: \(error.localizedDescription)")
        }
        return try TemplateLinter(rulebook: data)
    }

    /// The rulebook language used for a template language code such as
    /// `"en_US"` or `"pt-BR"`; unknown languages fall back to English.
    public static func resolveLanguage(_ code: String) -> String {
        let base =
            code.split(whereSeparator: { $0 == "_" || $0 == "-" })
            .first.map { String($0).lowercased() } ?? ""
        let trimmed = base.trimmingCharacters(in: .whitespaces)
        return supportedLanguages.contains(trimmed) ? trimmed : fallbackLanguage
    }

    /// Lints a template. Non-utility templates get no findings.
    /// Findings are sorted by start offset, then rule id; overlapping matches
    /// of the same rule are merged into one finding.
    public func lint(
        isUtility: Bool,
        language: String,
        body: String,
        headerFormat: TemplateHeaderFormat?
    ) -> [TemplateLintFinding] {
        guard isUtility else { return [] }
        let lang = Self.resolveLanguage(language)
        var findings: [TemplateLintFinding] = []
        if let headerFormat, headerFormat.isMedia {
            findings.append(
                TemplateLintFinding(
                    rule: .mediaHeader, language: lang,
                    excerpt: "header: \(headerFormat.rawValue)", start: 0, end: 0
                ))
        }
        let text = FoldedText(body)
        for rule in rules {
            guard let compiled = rule.languages[lang] else { continue }
            let vetoes = compiled.excepts.flatMap { text.matches(of: $0.regex) }
            let hits = compiled.patterns.flatMap { text.matches(of: $0.regex) }
                .filter { hit in !vetoes.contains { $0.overlaps(hit) } }
                .sorted { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }
            var merged: [Range<Int>] = []
            for hit in hits {
                if let last = merged.last,
                    hit.lowerBound < last.upperBound || (hit.isEmpty && hit.lowerBound == last.upperBound)
                {
                    merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, hit.upperBound)
                } else {
                    merged.append(hit)
                }
            }
            for span in merged {
                findings.append(
                    TemplateLintFinding(
                        rule: rule.rule, language: lang,
                        excerpt: text.excerpt(span), start: span.lowerBound, end: span.upperBound
                    ))
            }
        }
        return findings.sorted {
            ($0.start, $0.rule.rawValue, $0.end) < ($1.start, $1.rule.rawValue, $1.end)
        }
    }

    // MARK: - Private

    /// Characters that continue a word in the folded body.
    private static let wordCharacter = "[a-z0-9_\\u00C0-\\u024F\\u0370-\\u03FF\\u0400-\\u04FF]"

    private static func compile(_ pattern: String, rule: String, language: String) throws -> CompiledPattern {
        // Patterns are matched as whole words/phrases: a match may not start or
        // end inside a word. Literal text in patterns is folded like the body
        // (diacritics removed, apostrophes normalised); case is handled by the
        // regex engine so escapes such as \S or \W keep their meaning.
        //
        // The word-character class is spelled as explicit ranges rather than
        // \p{L}: property classes in look-arounds make each NSRegularExpression
        // compile ~20x slower on Linux, and the folded body is lower-case with
        // diacritics removed, so Latin, Greek and Cyrillic ranges suffice.
        let folded = FoldedText.foldPattern(pattern)
        let wrapped = "(?<!\(wordCharacter))(?i:\(folded))(?!\(wordCharacter))"
        do {
            let regex = try NSRegularExpression(pattern: wrapped, options: [])
            return CompiledPattern(regex: regex)
        } catch {
            throw TemplateLintError.invalidPattern(
                rule: rule, language: language, pattern: pattern,
                reason: error.localizedDescription
            )
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            return "invalid JSON: \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return String(describing: error)
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let parts = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return parts.isEmpty ? "top level" : parts.joined(separator: ".")
    }
}

// MARK: - Rulebook file format

private struct RulebookFile: Decodable {
    let version: String
    let source: String?
    let rules: [RuleEntry]
}

private struct RuleEntry: Decodable {
    let id: String
    let description: String?
    let patterns: [String: [String]]?
    let except: [String: [String]]?
}

// MARK: - Compiled rules

/// `NSRegularExpression` is immutable after creation and documented as safe to
/// use from multiple threads concurrently.
private struct CompiledPattern: @unchecked Sendable {
    let regex: NSRegularExpression
}

private struct CompiledLanguage: Sendable {
    let patterns: [CompiledPattern]
    let excepts: [CompiledPattern]
}

private struct CompiledRule: Sendable {
    let rule: TemplateLintRule
    let languages: [String: CompiledLanguage]
}
