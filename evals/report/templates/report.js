// Filters rows already in the page (rendered and escaped by the templates); never builds HTML from data.
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
