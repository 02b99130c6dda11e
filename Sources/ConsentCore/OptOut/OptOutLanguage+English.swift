extension OptOutLanguage {
    static let english = OptOutLanguage(
        code: "en",
        vocabulary: [
            // "end" is left out: "at the end of the messages" is not a request.
            "stop": ["stop", "quit", "cease"],
            // Verbs whose object is the person: "stop texting me". "Sending me" is not here: "stop sending me
            // paper bills" is about the bills.
            "contacting": [
                "texting", "messaging", "emailing", "contacting", "spamming", "bothering", "pestering", "harassing",
                "whatsapping", "calling", "msging", "msgng", "txting", "spammin", "textin", "messagin",
            ],
            "sending": ["sending", "send", "receiving", "getting"],
            "me": ["me", "my_number", "this_number"],
            // Plural or uncountable only: "the message" is usually one particular message ("cancel my message").
            "messages": [
                "messages", "msgs", "msg", "texts", "text_messages", "txts", "sms", "smss", "emails", "mails",
                "promotions", "promos", "promotional*", "offers", "deals", "ads", "adverts", "advertisements",
                "advertising", "marketing", "newsletters", "newsletter", "spam", "junk", "notifications", "updates",
                "whatsapps", "whatsapp_messages", "communications", "campaigns", "reminders", "alerts",
            ],
            "these": ["these", "them", "anything", "stuff", "everything", "@junk"],
            "junk": ["crap", "junk", "rubbish", "spam", "garbage", "nonsense", "shit", "stuff"],
            "dont": ["dont", "do_not", "never", "please_dont", "please_do_not"],
            "dontWant": [
                "dont_want", "do_not_want", "dont_wanna", "no_longer_want", "dont_need", "do_not_need",
                "dont_wish", "do_not_wish", "no_longer_wish", "would_rather_not",
            ],
            "unsubscribe": ["unsubscribe", "unsub", "opt_out", "optout"],
            "wantTo": [
                "want_to", "wanna", "wish_to", "like_to", "need_to", "would_like_to", "d_like_to", "id_like_to",
                "trying_to", "try_to", "how_do_i", "how_can_i", "how_to", "please", "let_me",
            ],
            "remove": ["remove", "delete", "take", "erase", "drop"],
            "list": [
                "list", "lists", "mailing_list", "contact_list", "database", "distribution", "subscribers",
                "broadcast*", "@messages",
            ],
            "promotions": [
                "promotions", "promotion", "promos", "promo", "marketing", "marketing_messages", "offers", "deals",
                "ads", "advertising", "newsletters", "newsletter", "messages", "updates", "promotional_messages",
            ],
        ],
        commands: [
            "@unsubscribe|remove|delete|unsub @me",
            "opt @me out",
            "take @me off",
        ],
        phrases: [
            "@stop ~3 @messages",
            "@stop @contacting @me",
            "@stop @contacting|@sending $",
            "@stop @contacting|@sending @me? @these",
            "@stop @contacting|@sending @me? this|that $|@junk",
            "@dont @contacting|@sending|text|message|email|contact|call|spam|bother @me again|any_more|ever_again",
            "@dont @contacting|@sending @me ~3 @messages",
            "@dont contact|text|message|email|spam|bother @me $",
            "@dontWant ~4 @messages",
            "@dontWant ~2 to_be_contacted|to_be_texted|to_hear_from_you|to_receive_anything|anything_else",
            "no_more|no_further|not_any_more ~1 @messages",
            "enough|sick_of|tired_of|fed_up_with|fed_up_of|had_enough_of ~2 @messages",
            "@unsubscribe @me|please|now|$",
            "opt @me out",
            "@unsubscribe from|of ~3 @list|this|these|it|all|everything|whatsapp|you",
            "@wantTo @unsubscribe",
            "@remove @me off|from ~3 @list|this|it|whatsapp",
            "take|get @me off",
            "remove|delete @me $",
            "remove|delete|erase my number|phone_number|contact|details ~1 from|off",
            "stop|quit it|this|already|now please|now|thanks|already? $",
        ],
        reasons: [
            "never ~2 signed_up|subscribed|asked|agreed|consented|opted_in|gave|registered",
            "not_interested|no_interest|unsolicited",
            "@messages",
        ],
        vetoes: [
            "by_accident|by_mistake|accidentally|mistakenly|in_error|did_not_mean|didnt_mean|wrong_button",
            "want|like|wish|prefer to? keep|continue receiving|getting|to_receive|to_get",
            "resubscribe|re_subscribe|subscribe_me_again|sign_me_up_again|undo",
        ],
        negations: [
            "not", "dont", "doesnt", "didnt", "never", "no", "cant", "cannot", "wont", "shouldnt", "wouldnt",
            "neither", "nor", "without",
            // A question about why messages stopped is a complaint that they did: "why did you stop sending offers".
            "why", "did",
        ],
        gapBlockers: ["stop", "stopping", "quit", "end", "miss", "missing", "lose", "but", "if", "unless"],
        reversals: ["stop", "stopping", "end", "ending", "disappear"],
        courtesies: [
            "please", "now", "right_now", "immediately", "asap", "already", "thanks", "thank_you", "thankyou",
            "thx", "thnx", "thanx", "ty", "hi", "hello", "hey", "sorry", "kindly",
        ],
        buttonTitles: [
            "stop|pause|end|block|no_more|opt_out_of|unsubscribe_from|turn_off|mute|dont_send|dont_want all? @promotions",
            "@unsubscribe|stop|stop_all",
        ]
    )
}
