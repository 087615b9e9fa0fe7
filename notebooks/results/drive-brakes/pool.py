"""Brake recall pooled over each agent's training seeds, from benchmark JSON files (no crate).

    python3 pool.py benchmark.json [more.json ...]

Prints one Markdown row per driver: of the moving states in which the Autopilot brakes fully
for a person / vehicle / static obstacle, the share in which the driver braked fully too, and
its share of full brakes on clear states. Rows of the same recipe (training seeds) are pooled;
"marginal modes" rows (rwt drive eval --marginal) are kept apart from the greedy ones.
"""
import json, sys
rows = []
for f in sys.argv[1:]:
    rows += json.load(open(f))
recipes = ['agent: drive-labels-dagger-aggregate-moving-brake-seed', 'agent: drive-labels-dagger-aggregate-brake-free-seed',
           'agent: drive-labels-dagger-aggregate-brake-seed',
           'agent: drive-labels-dagger-aggregate-seed', 'agent: drive-labels-dagger-long-seed',
           'agent: drive-enet-dagger-aggregate']
groups = {}
for r in rows:
    d = r['driver']
    key = d.split(' (training seed')[0]
    for pre in recipes:
        if d.startswith(pre):
            key = pre + '* ' + ('after imitation' if 'after imitation' in d else 'end')
            break
    if 'marginal modes' in d:
        key += ', marginal modes'
    b = r.get('brakes')
    if not b: continue
    g = groups.setdefault(key, {k: [0, 0] for k in b})
    for k, v in b.items():
        g[k][0] += v['states']; g[k][1] += v['braked']
for k, g in groups.items():
    cell = lambda c: f"{100*c[1]/c[0]:.0f} % of {c[0]:,}" if c[0] else '–'
    print(f"| {k} | {cell(g['person'])} | {cell(g['vehicle'])} | {cell(g['static_obstacle'])} | {cell(g['clear'])} |")
