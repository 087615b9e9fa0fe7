import json, sys
rows = []
for f in sys.argv[1:]:
    rows += json.load(open(f))
groups = {}
for r in rows:
    d = r['driver']
    key = d.split(' (training seed')[0]
    for pre in ['agent: drive-labels-dagger-aggregate-brake-seed', 'agent: drive-labels-dagger-aggregate-seed', 'agent: drive-labels-dagger-long-seed', 'agent: drive-enet-dagger-aggregate']:
        if d.startswith(pre): key = pre + '* ' + ('after imitation' if 'after imitation' in d else 'end')
    b = r.get('brakes')
    if not b: continue
    g = groups.setdefault(key, {k: [0, 0] for k in b})
    for k, v in b.items():
        g[k][0] += v['states']; g[k][1] += v['braked']
for k, g in groups.items():
    cell = lambda c: f"{100*c[1]/c[0]:.0f} % of {c[0]}" if c[0] else '–'
    print(f"| {k} | {cell(g['person'])} | {cell(g['vehicle'])} | {cell(g['static_obstacle'])} | {cell(g['clear'])} |")
