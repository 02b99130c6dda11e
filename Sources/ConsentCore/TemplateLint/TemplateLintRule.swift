/// The content rules a WhatsApp Business *utility* template must not break
/// (seed document §4; WhatsApp Business Platform template guidelines).
public enum TemplateLintRule: String, Sendable, Codable, CaseIterable {
    /// The header is an image or a video.
    case mediaHeader = "media_header"
    /// Sales, upselling, discounts, promotions, coupons, price cuts.
    case promotion = "promotion"
    /// Product recommendations or offers.
    case recommendation = "recommendation"
    /// Newsletters and other periodic content.
    case recurringContent = "recurring_content"
    /// Acquisition messages to prospects.
    case acquisition = "acquisition"
    /// Re-engagement ("we miss you", "come back").
    case reEngagement = "re_engagement"
    /// App-rating and review requests.
    case ratingRequest = "rating_request"
    /// Requests to share, invite friends or refer a friend.
    case shareRequest = "share_request"
    /// Reminders based on presumed interest (abandoned carts, back in stock).
    case presumedInterest = "presumed_interest"
    /// Product surveys and market research.
    case survey = "survey"

    /// Rules that are decided from the body text via the rulebook.
    public static var contentRules: [TemplateLintRule] {
        allCases.filter { $0 != .mediaHeader }
    }
}
