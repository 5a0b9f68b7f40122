# ruff: noqa: E501 - stylesheet and script text, kept readable
"""The report's inline stylesheet and script (the page loads nothing from anywhere)."""

# Nothing may be fetched: no network, no other files. Inline styles and scripts only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f3f4f6; --card:#fff; --accent:#1e3a5f;
        --pass:#15803d; --pass-bg:#dcfce7; --fail:#b91c1c; --fail-bg:#fee2e2; --warn-bg:#fef3c7; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:var(--accent); color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:650; letter-spacing:.2px; }
header .sub { color:#cbd5e1; font-size:13px; }
main { max-width:1440px; margin:0 auto; padding:20px 24px 48px; }
section.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
               box-shadow:0 1px 2px rgba(0,0,0,.04); padding:18px 22px; margin:0 0 20px; }
section.card h2 { margin:0 0 12px; font-size:16px; font-weight:650; }
.note { color:var(--muted); font-size:12.5px; margin:8px 0 0; }
table { border-collapse:collapse; width:100%; }
th { text-align:left; font-weight:600; color:#374151; font-size:12.5px; text-transform:uppercase;
     letter-spacing:.03em; border-bottom:2px solid var(--line); padding:8px 10px; white-space:nowrap; }
td { border-bottom:1px solid var(--line); padding:8px 10px; vertical-align:top; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.metric .v { font-size:15px; font-weight:600; }
.ci { display:block; color:var(--muted); font-size:11.5px; font-weight:400; }
.ci::after { content:attr(data-note); }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:7px;
          vertical-align:-1px; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin:0 0 6px; font-size:13px; }
.legend .dash { display:inline-block; width:22px; border-top:2px dashed; margin-right:7px; vertical-align:3px; }
.legend .solid { display:inline-block; width:22px; border-top:3px solid; margin-right:7px; vertical-align:3px; }
.legend .faint { display:inline-block; width:22px; border-top:2px solid; opacity:.35; margin-right:7px; vertical-align:3px; }
table.training { margin-top:10px; }
svg.chart { width:100%; height:auto; display:block; }
.chip { display:inline-block; background:var(--warn-bg); color:#92400e; border-radius:10px; padding:1px 8px;
        font-size:11.5px; margin:1px 3px 1px 0; white-space:nowrap; }
.badge { display:inline-block; white-space:nowrap; border-radius:10px; padding:2px 9px; font-size:11.5px; font-weight:700;
         letter-spacing:.04em; }
.badge.pass { background:var(--pass-bg); color:var(--pass); }
.badge.fail { background:var(--fail-bg); color:var(--fail); }
.toolbar { display:flex; flex-wrap:wrap; align-items:center; gap:10px 16px; margin:0 0 12px; }
.seg { display:inline-flex; border:1px solid #cbd5e1; border-radius:8px; overflow:hidden; }
.seg button { border:0; background:#fff; padding:6px 14px; font:inherit; cursor:pointer; color:#334155; }
.seg button + button { border-left:1px solid #cbd5e1; }
.seg button.active { background:var(--accent); color:#fff; }
select, input[type=search] { font:inherit; padding:6px 10px; border:1px solid #cbd5e1; border-radius:8px;
                             background:#fff; }
input[type=search] { min-width:240px; }
#shown-count { color:var(--muted); margin-left:auto; }
table.samples td { font-size:13px; }
table.samples { table-layout:fixed; }
table.samples col.c-model { width:110px; } table.samples col.c-num { width:54px; }
table.samples col.c-text { width:17%; } table.samples col.c-answer { width:30%; }
table.samples col.c-reward { width:72px; } table.samples col.c-result { width:84px; }
table.samples col.c-errors { width:130px; }
table.samples td { overflow-wrap:anywhere; }
pre { margin:0; white-space:pre-wrap; word-break:break-word; font:12px/1.45 ui-monospace,SFMono-Regular,
      Menlo,Consolas,monospace; }
pre.answer { max-height:220px; overflow:auto; background:#f9fafb; border:1px solid var(--line);
             border-radius:6px; padding:6px 8px; }
details summary { cursor:pointer; color:#1f2937; }
details summary .preview { color:var(--muted); }
details[open] summary .preview { display:none; }
details[open] summary::after { content:"hide"; color:var(--muted); font-size:12px; }
.expected { color:var(--muted); font-size:12px; margin-top:4px; }
details pre { margin-top:6px; max-height:320px; overflow:auto; background:#f9fafb; border-radius:6px;
              padding:6px 8px; border:1px solid var(--line); }
.muted { color:var(--muted); }
dl.runs { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:0; font-size:13px; }
dl.runs dt { font-weight:600; } dl.runs dd { margin:0; color:#374151; overflow-wrap:anywhere; }
#more { margin:14px auto 0; display:block; font:inherit; padding:7px 18px; border:1px solid #cbd5e1;
        border-radius:8px; background:#fff; cursor:pointer; }
#more[hidden] { display:none; }
"""

# Filters rows already in the page (rendered and escaped on the server side); never builds HTML from data.
JS = """
(function () {
  const PAGE = 1000;  // rows shown at first; "Show more" adds as many
  const rows = Array.from(document.querySelectorAll('table.samples tbody tr.sample'));
  const state = { result: 'all', model: '', query: '', limit: PAGE };
  const buttons = Array.from(document.querySelectorAll('.seg button[data-filter]'));
  const modelSelect = document.getElementById('filter-model');
  const search = document.getElementById('filter-search');
  const counter = document.getElementById('shown-count');
  const more = document.getElementById('more');
  function matchesModel(row) { return !state.model || row.dataset.model === state.model; }
  function apply() {
    let matched = 0, shown = 0;
    const counts = { all: 0, pass: 0, fail: 0 };
    for (const row of rows) {
      const inModel = matchesModel(row) && (!state.query || row.textContent.toLowerCase().includes(state.query));
      if (inModel) { counts.all++; counts[row.dataset.pass === '1' ? 'pass' : 'fail']++; }
      const ok = inModel && (state.result === 'all' || (state.result === 'pass') === (row.dataset.pass === '1'));
      if (ok) { matched++; }
      const visible = ok && shown < state.limit;
      if (visible) { shown++; }
      row.hidden = !visible;
    }
    for (const b of buttons) {
      b.classList.toggle('active', b.dataset.filter === state.result);
      b.querySelector('.n').textContent = counts[b.dataset.filter];
    }
    counter.textContent = 'Showing ' + shown + ' of ' + matched + ' matching samples (' + rows.length + ' in all)';
    counter.dataset.shown = shown; counter.dataset.matched = matched;
    more.hidden = matched <= shown;
  }
  for (const b of buttons) {
    b.addEventListener('click', function () { state.result = b.dataset.filter; state.limit = PAGE; apply(); });
  }
  modelSelect.addEventListener('change', function () { state.model = modelSelect.value; state.limit = PAGE; apply(); });
  search.addEventListener('input', function () { state.query = search.value.trim().toLowerCase(); state.limit = PAGE; apply(); });
  more.addEventListener('click', function () { state.limit += PAGE; apply(); });
  apply();
})();
"""
