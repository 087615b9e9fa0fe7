# Training town: the collisions with cars the ego car drove into (front quadrant, ego moving; as
# BenchmarkRow::impact_table), split by what the other car was doing: standing (under 1 km/h)
# or moving, and where: centred ahead (|right_m| < 1.2 m: in the ego car's path) or off-centre.
# Pooled over training and benchmark seeds; greedy drivers only.
#   python3 driven-into.py ../drive-labels-dagger/impacts-baselines-std.json \
#       ../drive-labels-dagger/benchmark.json benchmark.json ../drive-enet-dagger-brake/benchmark.json > driven-into.md
import collections, json, sys
rows = []
for f in sys.argv[1:]:
    rows += json.load(open(f))
def front(im):
    return im['ego_kmh'] >= 1 and im['ahead_m'] > abs(im['right_m'])
agg = collections.OrderedDict()
for r in rows:
    if r['condition'] != 'training town' or 'sampled' in r['driver']:
        continue
    if r['driver'].startswith('untrained') or r['driver'] == 'random policy':
        continue
    k = r['driver'].split(' (training seed')[0]
    for s in range(3):
        k = k.replace(f'-seed{s}', '')
    a = agg.setdefault(k, {'km': 0.0, 'c': collections.Counter(), 'ego': [], 'seeds': set()})
    a['km'] += r['pooled']['km']
    for e in r['episodes']:
        for i in e['infractions']:
            im = i.get('impact')
            if i['kind'] != 'CollisionVehicle' or im is None or not front(im):
                continue
            standing = im['other_kmh'] < 1
            centred = abs(im['right_m']) < 1.2
            a['c'][('standing' if standing else 'moving', 'centred' if centred else 'off-centre')] += 1
            a['ego'].append(im['ego_kmh'])
print('| driver | km | driven into | other standing, centred ahead | standing, off-centre | other moving, centred | moving, off-centre | km / standing car centred ahead | ego km/h at impact (median) |')
print('|---|' + '---:|' * 8)
for k, a in agg.items():
    c = a['c']
    n = sum(c.values())
    sc = c[('standing', 'centred')]
    per = f"{a['km'] / sc:.2f}" if sc else f"> {a['km']:.2f}"
    ego = sorted(a['ego'])
    med = f"{ego[len(ego) // 2]:.0f}" if ego else '–'
    print(f"| {k} | {a['km']:.2f} | {n} | {sc} | {c[('standing', 'off-centre')]} | {c[('moving', 'centred')]} | {c[('moving', 'off-centre')]} | {per} | {med} |")
