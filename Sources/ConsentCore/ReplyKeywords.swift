import Foundation

/// Whole-message keywords that people reply with. A keyword counts only when it is the entire message (after
/// trimming white space and surrounding punctuation), compared without case or accents: "Stop!" and "arrêt"
/// withdraw, "please don't stop the updates" does not.
public enum ReplyKeywords {
    /// Withdraws every purpose on the channel. English, Italian, German, French, Spanish and Portuguese.
    /// Words that are also everyday replies in another language ("fine", "alto") are left out on purpose.
    public static let stop: Set<String> = [
        "stop", "stopall", "unsubscribe", "cancel", "end", "quit", "opt out", "optout",
        "annulla", "basta", "disiscrivimi",
        "stopp", "abmelden", "austragen",
        "arret", "desabonner", "desinscrire",
        "baja", "cancelar", "parar",
        "sair", "descadastrar",
    ]

    /// Confirms a pending double opt-in.
    public static let confirm: Set<String> = ["yes", "si", "ja", "oui", "sim"]

    public static func isStop(_ message: String) -> Bool { stop.contains(fold(message)) }
    public static func isConfirmation(_ message: String) -> Bool { confirm.contains(fold(message)) }

    /// Case- and accent-free, trimmed of white space and punctuation at either end, inner spaces collapsed.
    static func fold(_ message: String) -> String {
        let folded = message.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        let trimmed = folded.trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters))
        return trimmed.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
