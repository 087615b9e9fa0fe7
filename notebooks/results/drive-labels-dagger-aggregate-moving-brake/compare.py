# Training town, 100 episodes per training seed (benchmark seeds 0–9): km between infractions of
# the moving-brake agents, the brake-weighted agents (section 19) and section 17's agents, greedy
# and with the marginals' modes, each with the one-sided p of so few infractions if its rate were
# (F) the random floor's (300 episodes), (B) the 4×-brake agents' and (S) section 17's agents'.
# The interval and test functions are drive-floor/floor.py's (independent of the crate's rl::rates).
#   cd notebooks/results && python3 drive-labels-dagger-aggregate-moving-brake/compare.py
import json, math
exec(open('drive-floor/floor.py').read().split('rows = []')[0])  # imports only
src = open('drive-floor/floor.py').read()
exec(src[src.index('def driven_into'):src.index('def pool')])  # KINDS
exec(src[src.index('def cdf'):src.index("floor = '")])  # cdf, solve, interval, p_below
FLOOR, BRAKES = 'drive-floor/benchmark.json', 'drive-brakes/benchmark.json'
MARGINAL, MOVING = 'drive-brakes/marginal.json', 'drive-labels-dagger-aggregate-moving-brake/brakes-100.json'
def pool(path, prefix, marginal=False):
    rs = [r for r in json.load(open(path)) if r['condition'] == 'training town'
          and r['driver'].startswith(prefix) and ('marginal modes' in r['driver']) == marginal]
    km = sum(r['pooled']['km'] for r in rs)
    inf = [i for r in rs for e in r['episodes'] for i in e['infractions']]
    return km, [sum(1 for i in inf if f(i)) for _, f in KINDS], [r['pooled']['drive_percent'] for r in rs]
S17, B4, M16 = 'agent: drive-labels-dagger-aggregate-seed', 'agent: drive-labels-dagger-aggregate-brake-seed', 'agent: drive-labels-dagger-aggregate-moving-brake-seed'
groups = [('random policy without brake (300 episodes)', FLOOR, 'random policy without brake', False),
          ('Autopilot (privileged)', BRAKES, 'Autopilot (privileged)', False),
          ('labels agent, section 17', BRAKES, S17, False),
          ('brakes 4× (section 19)', BRAKES, B4, False),
          ('moving brakes 16×, standing 4×', MOVING, M16, False),
          ('section 17, marginal modes', MARGINAL, S17, True),
          ('brakes 4×, marginal modes', MARGINAL, B4, True),
          ('moving brakes 16×, marginal modes', MARGINAL, M16, True)]
res = {name: pool(*rest) for name, *rest in groups}
j_floor = res[groups[0][0]][0]  # the floor's row gets no p
refs = [('F', res[groups[0][0]]), ('B', res['brakes 4× (section 19)']), ('S', res['labels agent, section 17'])]
print('| driver | km | Drive % per row | ' + ' | '.join(f'km / {k}' for k, _ in KINDS) + ' |')
print('|---|---:|---|' + '---|' * len(KINDS))
for name, (km, ns, dp) in res.items():
    cells = []
    for j, n in enumerate(ns):
        c = f'{km / n:.2f} ({n})' if n else f'> {km:.2f} (0)'
        ps = [f'{tag} {p_below(n, km, ref[1][j], ref[0]):.3f}' for tag, ref in refs if ref[0] != km and j_floor != km]
        cells.append(c + ' ' + ', '.join(ps))
    print(f'| {name} | {km:.2f} | ' + ' / '.join(f'{d:.1f}' for d in dp) + ' | ' + ' | '.join(cells) + ' |')
