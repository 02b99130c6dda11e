/// One language's opt-out rules: its vocabulary, the sentences that say "no more messages", and the words that
/// turn such a sentence around. Written as data in Swift, one file per language, so that a native speaker can
/// review a language without reading the engine (`OptOutPattern` explains the pattern syntax).
struct OptOutLanguage: Sendable {
    /// ISO 639-1, for messages and tests.
    let code: String
    /// Named word lists that patterns refer to as `@name`. Entries use the pattern syntax (`do_not`, `disiscriv*`).
    let vocabulary: [String: [String]]
    /// Whole messages that are a stop keyword with its object, where the language writes the pronoun as a word of
    /// its own: "unsubscribe me", "désinscrivez-moi", "melde mich ab". They count as keywords (`^ … $` implied,
    /// and the whole message, not one clause of it).
    let commands: [String]
    /// Sentences of a typed message that withdraw consent.
    let phrases: [String]
    /// Reasons that make an everyday stop word, said as a clause of its own, a withdrawal: "Stop! I never signed
    /// up", "Arrêtez ! Vos SMS me saoulent". Without one, "Stop! That's the wrong address" is about the delivery.
    let reasons: [String]
    /// Anywhere in a message, these take back what the rest says: the stop was an accident ("I hit STOP by
    /// mistake"), or the person asks to go on receiving. A whole-message keyword is not taken back: it is all
    /// the message says.
    let vetoes: [String]
    /// Words that, just before a phrase in the same clause, reverse it: "non fermate", "don't stop",
    /// "nicht abbestellen". A rule that needs a negation ("don't send me") spells it out and starts with it.
    /// Every language's negations guard every rule (see `OptOutRulebook`).
    let negations: [String]
    /// Words a gap may not step over besides the negations: a second verb that reverses the sentence ("I don't
    /// want to *stop* receiving updates", "non voglio *perdere* le offerte"), or a clause of its own ("but", "if").
    let gapBlockers: [String]
    /// Words that, right after a phrase, reverse it: "I don't want the messages *to stop*". Shared like negations.
    let reversals: [String]
    /// Words that may stand around a stop keyword without changing what it says: "STOP please", "basta grazie".
    let courtesies: [String]
    /// Titles of the template's quick-reply button that stops marketing, as whole titles (`^ … $` implied).
    let buttonTitles: [String]
}
