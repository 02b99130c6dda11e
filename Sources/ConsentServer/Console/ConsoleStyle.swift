/// The console's stylesheet. Colours meet WCAG 2.1 AA on white: body text #1b1f24 (16:1), secondary text #57606a
/// (6.4:1), links #0a58a8 (7:1), the danger button's white on #b3261e (6.3:1); chart bars and focus rings are over 3:1.
/// One column under 44rem, tables scroll inside their own box, so no page scrolls sideways at 390 px.
enum ConsoleStyle {
    static let css = """
        :root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; background: #f6f8fa; line-height: 1.5; }
        * { box-sizing: border-box; }
        body { margin: 0; }
        a { color: #0a58a8; }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
          outline: 3px solid #0a58a8; outline-offset: 2px; }
        .skip { position: absolute; left: -999px; }
        .skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .5rem; z-index: 2; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        .bar { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .75rem 1.25rem; background: #fff;
          border-bottom: 1px solid #d0d7de; }
        .brand { font-weight: 600; }
        .muted { color: #57606a; font-weight: normal; }
        nav[aria-label="Console"] { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
        nav a { text-decoration: none; padding: .25rem 0; border-bottom: 2px solid transparent; }
        nav a[aria-current="page"] { border-bottom-color: #0a58a8; font-weight: 600; }
        .signout { margin-left: auto; }
        main { max-width: 72rem; margin: 0 auto; padding: 1.25rem; }
        h1 { font-size: 1.5rem; margin: .25rem 0 1rem; }
        h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
        h3 { font-size: 1rem; margin: 0 0 .5rem; }
        .card { background: #fff; border: 1px solid #d0d7de; border-radius: .5rem; padding: 1rem 1.25rem; margin: 0 0 1rem; }
        .narrow { max-width: 32rem; }
        label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
        input[type=text], input[type=password], input[type=date], select { font: inherit; width: 100%; padding: .5rem .6rem;
          border: 1px solid #6e7781; border-radius: .375rem; background: #fff; color: inherit; }
        button { font: inherit; margin-top: .75rem; padding: .5rem 1rem; min-height: 2.5rem; border-radius: .375rem; cursor: pointer;
          border: 1px solid #0a58a8; background: #0a58a8; color: #fff; }
        button.secondary { background: #fff; color: #0a58a8; }
        button.danger { background: #b3261e; border-color: #b3261e; }
        button.link { margin: 0; padding: .25rem .5rem; min-height: 0; background: none; border: 0; color: #0a58a8; text-decoration: underline; }
        form.inline { display: inline-block; margin-right: .5rem; }
        .grid-form { display: grid; gap: .5rem 1rem; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); align-items: end; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; font-size: .95rem; }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #d8dee4; vertical-align: top; }
        th { font-weight: 600; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.overdue td, li.overdue { color: #8a1c15; }
        .bad { color: #8a1c15; }
        .flash { background: #dafbe1; border: 1px solid #2da44e; padding: .5rem .75rem; border-radius: .375rem; }
        .problem { background: #ffebe9; border: 1px solid #cf222e; color: #8a1c15; padding: .5rem .75rem; border-radius: .375rem; }
        .facts { display: grid; grid-template-columns: minmax(8rem, max-content) minmax(0, 1fr); gap: .25rem 1rem; margin: 0 0 .75rem; }
        .facts dt { color: #57606a; }
        .facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
        .break { overflow-wrap: anywhere; }
        code { overflow-wrap: anywhere; }
        blockquote { margin: 0; padding: .25rem .75rem; border-left: 3px solid #d0d7de; }
        .consent { border-top: 1px solid #d8dee4; padding: .75rem 0; }
        .consent:first-of-type { border-top: 0; }
        .status { font-size: .8rem; font-weight: 600; padding: .1rem .45rem; border-radius: 1rem; border: 1px solid currentColor; }
        .status-granted { color: #116329; }
        .status-pending { color: #7d4e00; }
        .status-withdrawn, .status-expired { color: #57606a; }
        .timeline { padding-left: 1.25rem; margin: 0; }
        .timeline li { margin: .2rem 0; overflow-wrap: anywhere; }
        .danger-zone { border-color: #cf222e; }
        .plain { list-style: none; padding: 0; margin: 0; }
        .chart-wrap { max-width: 100%; }
        .chart { width: 100%; height: auto; display: block; }
        .chart .grid { stroke: #d8dee4; stroke-width: 1; }
        .chart .tick { font-size: 11px; fill: #57606a; }
        .bar-granted, .key-granted { fill: #1f6feb; background: #1f6feb; }
        .bar-withdrawn, .key-withdrawn { fill: #cf222e; background: #cf222e; }
        .legend { font-size: .9rem; color: #57606a; }
        .key { display: inline-block; width: .8rem; height: .8rem; margin: 0 .35rem 0 .75rem; vertical-align: -1px; }
        .pager { display: flex; gap: 1rem; margin-top: .75rem; }
        @media (max-width: 44rem) {
          main { padding: .75rem; }
          .facts { grid-template-columns: minmax(0, 1fr); }
          .facts dt { margin-top: .35rem; }
          .signout { margin-left: 0; }
        }
        """
}
