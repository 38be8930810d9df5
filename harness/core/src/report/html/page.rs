//! The page builder: fixed markup is `&'static str`, everything else goes through
//! [`escape::text`], and charts come in as [`Svg`] values only `charts` can make.
//! So data can only ever land in the page as escaped text.

use super::escape;

/// An SVG document produced by `charts` (plotters' SVG backend, labels sanitised).
pub struct Svg(pub(super) String);

#[derive(Default)]
pub struct Page {
    out: String,
}

impl Page {
    /// Fixed markup of the report itself. `'static` keeps run data out of here.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Data, escaped.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.out.push_str(&escape::text(s));
        self
    }

    /// `<tag class="class">text</tag>`
    pub fn el(&mut self, tag: &'static str, class: &'static str, s: &str) -> &mut Self {
        self.open(tag, class).text(s).close(tag)
    }

    pub fn open(&mut self, tag: &'static str, class: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        if !class.is_empty() {
            self.out.push_str(" class=\"");
            self.out.push_str(class);
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// A table row of cells; `classes[i]` styles cell `i` (missing: none).
    pub fn row(&mut self, cells: &[&str], classes: &[&'static str]) -> &mut Self {
        self.raw("<tr>");
        for (i, c) in cells.iter().enumerate() {
            self.el("td", classes.get(i).copied().unwrap_or(""), c);
        }
        self.raw("</tr>\n")
    }

    /// A header row.
    pub fn head(&mut self, cells: &[&'static str]) -> &mut Self {
        self.raw("<thead><tr>");
        for c in cells {
            self.raw("<th>").raw(c).raw("</th>");
        }
        self.raw("</tr></thead>\n")
    }

    pub fn svg(&mut self, svg: Svg) -> &mut Self {
        self.out.push_str(&svg.0);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// No network, no scripts: the policy forbids both, so even a bug in escaping could
/// not run code or fetch anything.
pub const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
"#;

pub const STYLE: &str = r#"<style>
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
  --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#cf222e; --fail-bg:#ffebe9; --unk:#9a6700; --unk-bg:#fff8c5; }
* { box-sizing: border-box; }
body { margin:0; background:var(--soft); color:var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header.top { display:flex; justify-content:space-between; align-items:baseline; gap:16px; flex-wrap:wrap; }
header.top h1 { font-size: 22px; margin: 0; }
header.top .meta { color: var(--muted); font-size: 13px; }
section { background: var(--bg); border:1px solid var(--line); border-radius: 8px; padding: 18px 22px; margin-top: 18px; }
h2 { font-size: 17px; margin: 0 0 12px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.banner { border-radius: 8px; padding: 18px 22px; margin-top: 18px; border: 1px solid; display:flex; gap: 22px; align-items:center; flex-wrap: wrap; }
.banner .word { font-size: 34px; font-weight: 800; letter-spacing: .04em; }
.banner .why { font-size: 16px; flex: 1 1 320px; }
.banner.pass { background: var(--pass-bg); border-color: var(--pass); color: #0f5323; }
.banner.fail { background: var(--fail-bg); border-color: var(--fail); color: #82071e; }
.banner.unknown { background: var(--unk-bg); border-color: var(--unk); color: #4d2d00; }
.stats { display:grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin-top: 14px; }
.stat { background: var(--bg); border:1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.stat .v { font-size: 20px; font-weight: 700; font-variant-numeric: tabular-nums; }
.stat .k { font-size: 12px; color: var(--muted); }
.error { background: var(--fail-bg); border:1px solid var(--fail); border-radius:6px; padding: 10px 14px; white-space: pre-wrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; margin-top: 12px; overflow-wrap:anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: 13px; color: var(--muted); }
tbody th { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; overflow-wrap: anywhere; }
td.key.short { overflow-wrap: normal; word-break: keep-all; min-width: 8em; }
td.bad { color: var(--fail); font-weight: 700; }
td.zero { color: var(--muted); }
.pill { display:inline-block; min-width: 76px; text-align:center; font-weight:700; font-size:12px; border-radius: 12px; padding: 2px 8px; }
.pill.pass { background: var(--pass-bg); color: var(--pass); }
.pill.fail { background: var(--fail-bg); color: var(--fail); }
.pill.unknown { background: var(--unk-bg); color: var(--unk); }
details { margin-top: 8px; }
summary { cursor: pointer; font-weight: 600; }
pre { background: var(--soft); border:1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow:auto; font-size: 12.5px; line-height: 1.45; max-height: 520px;
  font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
pre .hl { background: var(--fail-bg); color: #82071e; display: inline; }
.chart { overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; display:block; }
.note { color: var(--muted); font-size: 13px; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
.legend { display:flex; gap: 18px; font-size: 13px; color: var(--muted); margin: 0 0 6px; flex-wrap: wrap; }
.sw { display:inline-block; width: 18px; height: 4px; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
.sw.c0 { background:#0969da; } .sw.c1 { background:#8250df; } .sw.c2 { background:#1a7f37; } .sw.c3 { background:#bc4c00; }
.sw.fault { background: rgba(207,34,46,.25); height: 12px; border-left: 2px solid #cf222e; border-radius: 0; }
.sw.recover { background: rgba(212,167,44,.3); height: 12px; border-radius: 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 22px; text-align:center; }
</style>
"#;
