import ConsentCore
import Testing

/// Which pages may call the widget's routes (`CallingPage.verdict`).
@Suite struct CallingPageTests {
    let own = [AllowedOrigin("https://consent.example")].compactMap { $0 }
    let allowed = [AllowedOrigin("https://shop.example")].compactMap { $0 }

    @Test func anAllowedOrTheServicesOwnOriginMayCallAndNoOtherMay() {
        for origin in ["https://shop.example", "HTTPS://Shop.Example:443", "https://consent.example"] {
            #expect(CallingPage(origin: origin, ownOrigins: own).verdict(allowed: allowed) == .allowed(origin))
        }
        for origin in ["https://evil.example", "http://shop.example", "https://shop.example/path", "null", ""] {
            #expect(CallingPage(origin: origin, ownOrigins: own).verdict(allowed: allowed) == .refused, "\(origin)")
        }
    }

    /// Issue 21, finding 8: a read without `Origin` is no browser page and needs no permission; a decision without
    /// one is refused, because it cannot show which page it came from.
    @Test func noOriginIsFineForAReadAndRefusedForADecision() {
        let page = CallingPage(origin: nil, ownOrigins: own)
        #expect(page.verdict(allowed: allowed) == .noOrigin)
        #expect(page.verdict(allowed: allowed, requiringOrigin: true) == .refused)
        #expect(
            CallingPage(origin: "https://shop.example", ownOrigins: own).verdict(
                allowed: allowed, requiringOrigin: true)
                == .allowed("https://shop.example"))
    }
}
