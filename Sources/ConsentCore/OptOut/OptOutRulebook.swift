/// The six languages' opt-out rules, compiled once. Every message is read against every language: a message's
/// language is not known at this point (people answer an Italian template in English). So the negations and
/// reversals of all six guard every rule: "stop" and "updates" are German words too, and "I don't want to stop
/// receiving updates" must not be a German opt-out because German has no "don't". A language's other gap
/// blockers stay its own: Portuguese "mas" is "but", Spanish "más" is "more".
struct OptOutRulebook: Sendable {
    struct Rule: Sendable {
        let language: String
        let pattern: OptOutPattern
    }

    struct Guards: Sendable {
        let negations: OptOutPattern.WordSet
        let gapBlockers: OptOutPattern.WordSet
        let reversals: OptOutPattern.WordSet
    }

    /// How far before a phrase a negation still reverses it ("I don't want to stop …": "don't" is three words
    /// before "stop"); never past a pause or a sentence end.
    static let negationReach = 4
    /// How far after a phrase a reversal still reverses it ("… the messages to stop").
    static let reversalReach = 2

    static let languages: [OptOutLanguage] = [.english, .italian, .german, .french, .spanish, .portuguese]
    static let shared = OptOutRulebook(languages: languages)

    /// Keywords that count only as the whole message: with words around them they are as likely to be about an
    /// order or a booking ("cancel please", "annulla grazie") as about messages.
    static let wholeMessageOnly: Set<String> = ["cancel", "end", "quit", "annulla", "cancella", "cancelar"]
    /// Keywords that are everyday words too, so they count with courtesies ("Basta, grazie!") but not as one
    /// clause of a longer message ("Basta, il pacco è arrivato", "Chega. Preciso pro aniversário").
    /// "Stop" is one of them: "Stop! That's the wrong address".
    static let everydayWords: Set<String> = [
        "stop", "stopp", "basta", "chega", "pare", "parem", "parar", "sair", "baja", "arret", "arreter", "arretez",
        "detener", "remover", "aufhoren", "hor auf", "hort auf", "horen sie auf", "revoke",
    ]

    let commands: [Rule]
    let phrases: [Rule]
    let vetoes: [Rule]
    let reasons: [Rule]
    let buttons: [Rule]
    let guards: [String: Guards]
    /// Courtesy words and phrases of every language, longest first so that "per favore" goes before "per".
    let courtesies: [[String]]
    /// Patterns that did not compile; a test keeps this empty.
    let invalid: [OptOutPattern.Invalid]

    init(languages: [OptOutLanguage]) {
        var commands: [Rule] = []
        var phrases: [Rule] = []
        var vetoes: [Rule] = []
        var reasons: [Rule] = []
        var buttons: [Rule] = []
        var guards: [String: Guards] = [:]
        var courtesies: Set<[String]> = []
        var invalid: [OptOutPattern.Invalid] = []
        let negations = languages.flatMap(\.negations).map { OptOutPattern.Word(Substring($0)) }
        let reversals = languages.flatMap(\.reversals).map { OptOutPattern.Word(Substring($0)) }
        for language in languages {
            func compile(_ source: String) -> Rule? {
                do {
                    let pattern = try OptOutPattern(source, vocabulary: language.vocabulary)
                    return Rule(language: language.code, pattern: pattern)
                } catch {
                    invalid.append(error)
                    return nil
                }
            }
            commands += language.commands.compactMap(compile)
            phrases += language.phrases.compactMap(compile)
            vetoes += language.vetoes.compactMap(compile)
            reasons += language.reasons.compactMap(compile)
            buttons += language.buttonTitles.compactMap { compile("^ \($0) $") }
            guards[language.code] = Guards(
                negations: OptOutPattern.WordSet(negations),
                gapBlockers: OptOutPattern.WordSet(negations + language.gapBlockers.map { .init(Substring($0)) }),
                reversals: OptOutPattern.WordSet(reversals))
            for courtesy in language.courtesies { courtesies.insert(courtesy.split(separator: "_").map(String.init)) }
        }
        self.commands = commands
        self.phrases = phrases
        self.vetoes = vetoes
        self.reasons = reasons
        self.buttons = buttons
        self.guards = guards
        self.courtesies = courtesies.sorted {
            $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1)
        }
        self.invalid = invalid
    }

    /// The whole message is a keyword with its object pronoun ("unsubscribe me", "Retirez-moi").
    func isCommand(_ text: OptOutText) -> Bool { isCommand(words: text.words) }

    /// Why the text withdraws consent as a phrase, for logs and review; nil when it does not.
    func phrase(in text: OptOutText) -> String? {
        // A veto is guarded like a phrase: "I don't want to keep receiving these" takes nothing back.
        if vetoes.contains(where: { matchesUnreversed($0, text.words) }) { return nil }
        if isCourteousKeyword(text.words) { return "a stop keyword with courtesies" }
        if let clause = keywordClause(text.words) { return "a stop keyword as a clause: \(clause)" }
        return phrases.first { matchesUnreversed($0, text.words) }.map { "\($0.language): \($0.pattern)" }
    }

    /// A whole button title that is the stop-promotions button.
    func isStopButtonTitle(_ text: OptOutText) -> Bool {
        buttons.contains { matchesUnreversed($0, text.words) }
    }

    /// A stop keyword with only courtesies, pauses and repeats around it: "STOP please", "Basta, grazie!",
    /// "Retirez-moi svp", "stop stop stop". Whole-message keywords are `ReplyKeywords.isStop`'s; this is a phrase.
    private func isCourteousKeyword(_ words: [String]) -> Bool {
        let words = words.filter { !OptOutText.isBoundary($0) }
        let remainder = withoutCourtesies(words)
        if remainder.count < words.count, isKeyword(remainder, allowing: Self.everydayWords) { return true }
        // "stop stop stop": a repeat says the one keyword louder.
        let distinct = Set(remainder)
        return remainder.count > 1 && distinct.count == 1 && isKeyword(Array(distinct), allowing: Self.everydayWords)
    }

    /// A clause of a longer message that is a keyword on its own: "cancellami per favore, ricevo troppe offerte",
    /// or an everyday stop word with a reason beside it: "Stop! I never signed up".
    private func keywordClause(_ words: [String]) -> String? {
        let clauses = words.split(whereSeparator: OptOutText.isBoundary).map(Array.init)
        guard clauses.count > 1 else { return nil }
        let everyday = reasons.contains { matchesAnywhere($0, words) } ? Self.everydayWords : []
        return clauses.first { isKeyword(withoutCourtesies($0), allowing: everyday) }?.joined(separator: " ")
    }

    private func isKeyword(_ words: [String], allowing everyday: Set<String>) -> Bool {
        guard !words.isEmpty else { return false }
        if isCommand(words: words) { return true }
        let keyword = ReplyKeywords.foldKeyword(words.joined(separator: " "))
        guard ReplyKeywords.stop.contains(keyword), !Self.wholeMessageOnly.contains(keyword) else { return false }
        return !Self.everydayWords.contains(keyword) || everyday.contains(keyword)
    }

    private func isCommand(words: [String]) -> Bool {
        commands.contains { rule in
            guard let guards = guards[rule.language] else { return false }
            let end = rule.pattern.firstEnd(in: words, from: 0, gapBlockers: guards.gapBlockers) { $0 == words.count }
            return end != nil
        }
    }

    private func withoutCourtesies(_ words: [String]) -> [String] {
        var words = words
        var index = 0
        while index < words.count {
            if let courtesy = courtesies.first(where: { words[index...].starts(with: $0) }) {
                words.removeSubrange(index..<index + courtesy.count)
            } else {
                index += 1
            }
        }
        return words
    }

    private func matchesAnywhere(_ rule: Rule, _ words: [String]) -> Bool {
        guard let guards = guards[rule.language] else { return false }
        return words.indices.contains {
            rule.pattern.firstEnd(in: words, from: $0, gapBlockers: guards.gapBlockers) { _ in true } != nil
        }
    }

    private func matchesUnreversed(_ rule: Rule, _ words: [String]) -> Bool {
        guard let guards = guards[rule.language] else { return false }
        for start in words.indices where !OptOutText.isBoundary(words[start]) {
            let end = rule.pattern.firstEnd(in: words, from: start, gapBlockers: guards.gapBlockers) {
                !Self.isReversed(words, after: $0, by: guards.reversals)
            }
            if end != nil, !Self.isNegated(words, before: start, by: guards.negations) { return true }
        }
        return false
    }

    private static func isNegated(_ words: [String], before start: Int, by negations: OptOutPattern.WordSet) -> Bool {
        var index = start - 1
        while index >= 0, index >= start - negationReach, !OptOutText.isBoundary(words[index]) {
            if negations.contains(words[index]) { return true }
            index -= 1
        }
        return false
    }

    private static func isReversed(_ words: [String], after end: Int, by reversals: OptOutPattern.WordSet) -> Bool {
        var index = end
        while index < words.count, index < end + reversalReach, !OptOutText.isBoundary(words[index]) {
            if reversals.contains(words[index]) { return true }
            index += 1
        }
        return false
    }
}
