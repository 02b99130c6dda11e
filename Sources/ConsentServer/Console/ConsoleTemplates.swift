import Mustache

/// The console's pages as Mustache templates (swift-mustache). `{{…}}` escapes HTML; the pages carry no inline
/// script or style, so the console's Content-Security-Policy allows neither.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            // The templates are constants of this file; ConsoleTemplateTests renders each one.
            try? library.register(text, named: name)
        }
        return library
    }()

    static let sources: [String: String] = [
        "head": head, "foot": foot, "signIn": signIn, "overview": overview, "lookup": lookup, "subject": subject,
        "erased": erased, "requests": requests, "request": request, "audit": audit, "refused": refused,
    ]

    static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · ConsentLedger console</title>
        <link rel="stylesheet" href="/assets/console.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="bar">
        <span class="brand">ConsentLedger <span class="muted">DPO console</span></span>
        {{#signedIn}}
        <nav aria-label="Console">
        <a href="/console" {{#nav.overview}}aria-current="page"{{/nav.overview}}>Overview</a>
        <a href="/console/subject" {{#nav.subject}}aria-current="page"{{/nav.subject}}>Subjects</a>
        <a href="/console/requests" {{#nav.requests}}aria-current="page"{{/nav.requests}}>Requests</a>
        <a href="/console/audit" {{#nav.audit}}aria-current="page"{{/nav.audit}}>Audit</a>
        </nav>
        <form method="post" action="/console/sign-out" class="signout">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" class="link">Sign out</button>
        </form>
        {{/signedIn}}
        </header>
        <main id="main">
        {{#flash}}<p class="flash" role="status">{{flash}}</p>{{/flash}}
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        """

    static let foot = """
        </main>
        </body>
        </html>
        """

    static let signIn = """
        {{> head}}
        <h1>Sign in</h1>
        <p>Sign in with an API key that has the <code>dpo</code> scope. The key is exchanged for a session and not kept in your browser.</p>
        <form method="post" action="/console/sign-in" class="card narrow">
        <label for="key">DPO API key</label>
        <input id="key" name="key" type="password" autocomplete="off" required spellcheck="false">
        <button type="submit">Sign in</button>
        </form>
        {{> foot}}
        """

    static let overview = """
        {{> head}}
        <h1>Overview</h1>
        <section aria-labelledby="active-h" class="card">
        <h2 id="active-h">Active consents</h2>
        {{#hasActive}}
        <div class="scroll"><table>
        <caption class="visually-hidden">Active consents by purpose and channel</caption>
        <thead><tr><th scope="col">Purpose</th><th scope="col">Channel</th><th scope="col" class="num">Active now</th><th scope="col" class="num">Opt-ins, 12 weeks</th><th scope="col" class="num">Withdrawals, 12 weeks</th></tr></thead>
        <tbody>{{#active}}<tr><td>{{purpose}}</td><td>{{channel}}</td><td class="num">{{active}}</td><td class="num">{{granted}}</td><td class="num">{{withdrawn}}</td></tr>{{/active}}</tbody>
        </table></div>
        {{/hasActive}}
        {{^hasActive}}<p>No consents recorded yet.</p>{{/hasActive}}
        </section>
        <section aria-labelledby="weekly-h" class="card">
        <h2 id="weekly-h">Opt-ins and withdrawals per week</h2>
        <div class="chart-wrap">
        <svg viewBox="0 0 720 240" role="img" aria-labelledby="weekly-h weekly-desc" class="chart">
        <desc id="weekly-desc">Bar chart of the last 12 weeks; the same numbers are in the table that follows.</desc>
        {{#chart.ticks}}<line x1="44" x2="716" y1="{{y}}" y2="{{y}}" class="grid"/><text x="40" y="{{y}}" class="tick" text-anchor="end" dominant-baseline="middle">{{value}}</text>{{/chart.ticks}}
        {{#chart.bars}}<rect x="{{x}}" y="{{y}}" width="{{width}}" height="{{height}}" class="bar-{{kind}}"><title>{{title}}</title></rect>{{/chart.bars}}
        {{#chart.labels}}<text x="{{x}}" y="220" class="tick" text-anchor="middle">{{text}}</text>{{/chart.labels}}
        </svg>
        <p class="legend"><span class="key key-granted"></span>Opt-ins <span class="key key-withdrawn"></span>Withdrawals</p>
        </div>
        <details open><summary>The numbers</summary>
        <div class="scroll"><table>
        <thead><tr><th scope="col">Week of</th><th scope="col" class="num">Opt-ins</th><th scope="col" class="num">Withdrawals</th></tr></thead>
        <tbody>{{#weeks}}<tr><td>{{week}}</td><td class="num">{{granted}}</td><td class="num">{{withdrawn}}</td></tr>{{/weeks}}</tbody>
        </table></div>
        </details>
        </section>
        <section aria-labelledby="due-h" class="card">
        <h2 id="due-h">Requests due</h2>
        {{#hasDue}}
        <ul class="plain">{{#due}}<li class="{{#overdue}}overdue{{/overdue}}"><a href="/console/requests/{{id}}">{{type}} request</a>, due {{dueAt}}{{#overdue}} <strong>(overdue)</strong>{{/overdue}}</li>{{/due}}</ul>
        {{/hasDue}}
        {{^hasDue}}<p>Nothing is overdue or due in the next 7 days.</p>{{/hasDue}}
        </section>
        <section aria-labelledby="log-h" class="card">
        <h2 id="log-h">Audit log</h2>
        <dl class="facts">
        <dt>Latest checkpoint</dt><dd>{{#checkpoint}}{{size}} events, signed {{issuedAt}}{{/checkpoint}}{{^checkpoint}}none yet{{/checkpoint}}</dd>
        <dt>Last successful verification</dt><dd>{{#verified}}{{verifiedAt}} ({{treeSize}} events){{/verified}}{{^verified}}never{{/verified}}</dd>
        {{#lastFailure}}<dt>Last verification</dt><dd class="bad">failed {{verifiedAt}}: {{problem}}</dd>{{/lastFailure}}
        </dl>
        <p><a href="/console/audit">Browse and verify the log</a></p>
        </section>
        {{> foot}}
        """

    static let lookupForm = """
        <form method="post" action="/console/subject" class="card narrow" id="lookup">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="subject">Phone number or e-mail address</label>
        <input id="subject" name="subject" type="text" autocomplete="off" required value="{{query.subject}}">
        <label for="channel">Channel</label>
        <select id="channel" name="channel">
        {{#channels}}<option value="{{value}}" {{#selected}}selected{{/selected}}>{{label}}</option>{{/channels}}
        </select>
        <button type="submit">Look up</button>
        </form>
        """

    static let lookup = """
        {{> head}}
        <h1>Subjects</h1>
        <p>Look a person up by the identifier they gave. It is sent in the form, never in the address bar.</p>
        \(lookupForm)
        {{> foot}}
        """

    static let subject = """
        {{> head}}
        <h1>Subject</h1>
        \(lookupForm)
        <section class="card" aria-labelledby="who-h">
        <h2 id="who-h">{{subject.channelLabel}} subject</h2>
        <dl class="facts">
        <dt>Identifier</dt><dd><code>{{subject.identifier}}</code></dd>
        <dt>Reference</dt><dd><code>{{subject.ref}}</code></dd>
        <dt>First seen</dt><dd>{{subject.firstSeenAt}}</dd>
        <dt>Customer-care window</dt><dd>{{subject.window}}</dd>
        </dl>
        <form method="post" action="/console/subject/export" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="subject" value="{{subject.identifier}}"><input type="hidden" name="channel" value="{{subject.channel}}">
        <button type="submit" id="export">Download the export (JSON)</button>
        </form>
        </section>
        <section class="card" aria-labelledby="consents-h">
        <h2 id="consents-h">Consents</h2>
        {{^consents}}<p>None.</p>{{/consents}}
        {{#consents}}
        <article class="consent" data-purpose="{{purpose}}">
        <h3>{{purposeName}} <span class="status status-{{status}}">{{status}}</span></h3>
        <dl class="facts">
        <dt>Granted</dt><dd>{{grantedAt}}</dd>
        {{#revokedAt}}<dt>Withdrawn</dt><dd>{{revokedAt}} ({{revokeSource}})</dd>{{/revokedAt}}
        <dt>Notice</dt><dd><blockquote lang="{{noticeLanguage}}">{{noticeText}}</blockquote><span class="muted">SHA-256 {{noticeHash}}</span></dd>
        {{#evidence}}<dt>Collected</dt><dd>{{collectedAt}} by {{method}} on <span class="break">{{pageUrl}}</span>{{#userAgent}}<br><span class="muted break">{{userAgent}}</span>{{/userAgent}}{{#ipAddress}} · {{ipAddress}}{{/ipAddress}}</dd>{{/evidence}}
        </dl>
        {{#active}}
        <form method="post" action="/console/subject/withdraw" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="subject" value="{{identifier}}"><input type="hidden" name="channel" value="{{channel}}"><input type="hidden" name="purpose" value="{{purpose}}">
        <button type="submit" class="secondary">Withdraw {{purposeName}}</button>
        </form>
        {{/active}}
        </article>
        {{/consents}}
        </section>
        <section class="card" aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        <ol class="timeline">{{#timeline}}<li><time>{{at}}</time> <strong>{{action}}</strong> <span class="muted">#{{seq}} by {{actor}}</span>{{#detail}} · {{detail}}{{/detail}}</li>{{/timeline}}</ol>
        </section>
        <section class="card danger-zone" aria-labelledby="erase-h">
        <h2 id="erase-h">Erase this person</h2>
        <p>Erasure destroys the person's data key: their identifier, provenance and messages can never be read again. The audit log keeps its events without personal data.</p>
        <form method="post" action="/console/subject/erase" id="erase">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="subject" value="{{subject.identifier}}"><input type="hidden" name="channel" value="{{subject.channel}}">
        <label for="confirm">To confirm, type the last four characters of the identifier</label>
        <input id="confirm" name="confirm" type="text" inputmode="text" autocomplete="off" required maxlength="4" minlength="4">
        <button type="submit" class="danger">Erase permanently</button>
        </form>
        </section>
        {{> foot}}
        """

    static let erased = """
        {{> head}}
        <h1>Erased</h1>
        <p id="erased">The person was erased at {{erasedAt}}{{#suppressed}} and kept on the suppression list{{/suppressed}}. An export now finds nothing, and checks say no.</p>
        <p><a href="/console/subject">Look up another person</a></p>
        {{> foot}}
        """

    static let requests = """
        {{> head}}
        <h1>Requests</h1>
        <div class="scroll"><table>
        <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Received</th><th scope="col">Due</th><th scope="col"><span class="visually-hidden">Open</span></th></tr></thead>
        <tbody>{{#requests}}<tr class="{{#overdue}}overdue{{/overdue}}"><td>{{type}}</td><td>{{status}}{{#overdue}} <strong>overdue</strong>{{/overdue}}</td><td>{{receivedAt}}</td><td>{{dueAt}}</td><td><a href="/console/requests/{{id}}">Open<span class="visually-hidden"> {{type}} request received {{receivedAt}}</span></a></td></tr>{{/requests}}</tbody>
        </table></div>
        {{^requests}}<p>No requests.</p>{{/requests}}
        {{> foot}}
        """

    static let request = """
        {{> head}}
        <h1>{{request.type}} request</h1>
        <dl class="facts card">
        <dt>Status</dt><dd id="request-status">{{request.status}}{{#request.overdue}} <strong class="bad">overdue</strong>{{/request.overdue}}</dd>
        <dt>Received</dt><dd>{{request.receivedAt}}</dd>
        <dt>Due</dt><dd>{{request.dueAt}}</dd>
        <dt>Subject reference</dt><dd><code>{{request.subjectRef}}</code></dd>
        {{#request.closedAt}}<dt>Closed</dt><dd>{{request.closedAt}}</dd>{{/request.closedAt}}
        </dl>
        {{#request.pending}}
        <form method="post" action="/console/requests/{{request.id}}/complete" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" id="complete">{{request.completeLabel}}</button>
        </form>
        <form method="post" action="/console/requests/{{request.id}}/cancel" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" class="secondary" id="cancel">Cancel the request</button>
        </form>
        {{/request.pending}}
        <p><a href="/console/requests">All requests</a></p>
        {{> foot}}
        """

    static let audit = """
        {{> head}}
        <h1>Audit log</h1>
        <section class="card" aria-labelledby="verify-h">
        <h2 id="verify-h">Verification</h2>
        <p id="verification">{{#verification}}{{#ok}}Verified {{verifiedAt}}: {{treeSize}} events, every hash and signature checks.{{/ok}}{{^ok}}<span class="bad">Failed {{verifiedAt}}: {{problem}}</span>{{/ok}}{{/verification}}{{^verification}}Not verified yet.{{/verification}}</p>
        <form method="post" action="/console/audit/verify"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="verify">Verify the whole log now</button></form>
        </section>
        <section class="card" aria-labelledby="report-h">
        <h2 id="report-h">Reports</h2>
        <form method="get" action="/console/audit/report" class="grid-form" id="report">
        <div><label for="from">From (UTC)</label><input id="from" name="from" type="date" value="{{report.from}}" required></div>
        <div><label for="to">To (UTC, inclusive)</label><input id="to" name="to" type="date" value="{{report.to}}" required></div>
        <div><label for="format">Format</label><select id="format" name="format"><option value="csv">CSV</option><option value="ndjson">NDJSON</option><option value="html">Printable HTML</option></select></div>
        <div><button type="submit">Download</button></div>
        </form>
        </section>
        <section class="card" aria-labelledby="events-h">
        <h2 id="events-h">Events</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col" class="num">Seq</th><th scope="col">At</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Subject</th></tr></thead>
        <tbody>{{#events}}<tr><td class="num">{{seq}}</td><td>{{at}}</td><td>{{action}}</td><td class="break">{{actor}}</td><td class="break">{{subjectRef}}</td></tr>{{/events}}</tbody>
        </table></div>
        <nav class="pager" aria-label="Pages">{{#previous}}<a href="/console/audit?after={{previous}}">Newer</a>{{/previous}}{{#next}}<a href="/console/audit?after={{next}}" id="next">Older</a>{{/next}}</nav>
        </section>
        {{> foot}}
        """

    static let refused = """
        {{> head}}
        <h1>Refused</h1>
        <p id="refused">{{reason}}</p>
        <p><a href="/console">Back to the console</a></p>
        {{> foot}}
        """
}
