/// Tells whether an inbound message or a button tap withdraws consent, in English, Italian, German, French,
/// Spanish and Portuguese. Pure: no state, no I/O, the same answer for the same input.
///
/// Rules, not a model: a withdrawal must be explainable to the person and to a regulator, and a reviewer must be
/// able to read why "cancel my order" is not one. Precision comes first (a false withdrawal silently stops
/// messages someone asked for), so a sentence counts only when it plainly says "no more messages"; the rules are
/// in `OptOutLanguage+*.swift`, one file per language.
public enum OptOutDetector {
    /// A typed message: `.keyword` when the whole message is a stop keyword (`ReplyKeywords.isStop`, or a
    /// keyword with its object: "unsubscribe me", "Retirez-moi"), `.phrase` when it says so in a sentence
    /// ("please stop sending me these", "cancellami per favore"), nil otherwise.
    public static func classify(message: String) -> OptOutKind? {
        if ReplyKeywords.isStop(message) { return .keyword }
        let text = OptOutText(message)
        let rulebook = OptOutRulebook.shared
        if rulebook.isCommand(text) { return .keyword }
        return rulebook.phrase(in: text) == nil ? nil : .phrase
    }

    /// A quick-reply button tap: true for the stop-promotions button by its title in the six languages
    /// ("Stop promotions", "Interrompi promozioni", "Werbung stoppen", …), or by a payload the tenant configured
    /// for its own opt-out button. Titles are matched whole: "Cancel" on an appointment template is not a stop.
    public static func isStopButton(title: String?, payload: String?, configuredPayloads: Set<String>) -> Bool {
        if let payload, configuredPayloads.contains(payload) { return true }
        guard let title else { return false }
        if OptOutRulebook.shared.isStopButtonTitle(OptOutText(title)) { return true }
        // A tenant's own button may be a stop keyword ("Unsubscribe", "Sair"); "Cancel" on a booking template is
        // not one. A button that reads as a sentence is not the stop-promotions button unless its title says
        // promotions: "Stop reminders" is a utility template's.
        let keyword = ReplyKeywords.foldKeyword(title)
        return classify(message: title) == .keyword && !OptOutRulebook.wholeMessageOnly.contains(keyword)
    }

    /// Why a message is a phrase, as its rule is written in its language's table ("en: @stop ~3 @messages"),
    /// for logs and review; nil when it is not one.
    static func explain(message: String) -> String? {
        OptOutRulebook.shared.phrase(in: OptOutText(message))
    }
}
