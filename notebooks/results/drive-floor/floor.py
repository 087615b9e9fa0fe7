# Training town, 300 episodes per driver (benchmark seeds 0–29): km between infractions of each
# kind against the random driver without brake, computed here independently of the crate's
# rl::rates: Garwood's exact 95 % interval by bisection on the Poisson CDF, and the one-sided
# p = P(X ≤ n_agent), X ~ Binomial(n_agent + n_floor, km_agent / (km_agent + km_floor)), summed
# term by term with math.lgamma. Agents pooled over their three training seeds. floor-1000.py imports its functions.
#   python3 floor.py benchmark.json > floor.md
import gzip, json, math, sys
def load(files):
    rows = []
    for f in files:
        rows += json.load(gzip.open(f, 'rt') if f.endswith('.gz') else open(f))
    return rows
FLOOR = 'random policy without brake'
def long_floor_drivers(d300):
    """The first two drivers of the long-floor tables: the 10,000-episode floor
    (floor-1000.json.gz) and the Autopilot of d300 (benchmark.json's rows, 300 episodes)."""
    return [(FLOOR, load(['floor-1000.json.gz']), FLOOR),
            ('Autopilot (privileged)', d300, 'Autopilot (privileged)')]
def driven_into(i):
    im = i.get('impact')
    return im is not None and im['ego_kmh'] >= 1 and im['ahead_m'] > abs(im['right_m'])
KINDS = [('person', lambda i: i['kind'] == 'CollisionPerson'),
         ('person driven into', lambda i: i['kind'] == 'CollisionPerson' and driven_into(i)),
         ('car', lambda i: i['kind'] == 'CollisionVehicle'),
         ('car driven into', lambda i: i['kind'] == 'CollisionVehicle' and driven_into(i)),
         ('static', lambda i: i['kind'] == 'CollisionStatic'),
         ('off-lane', lambda i: i['kind'] == 'OffLane'),
         ('off-road', lambda i: i['kind'] == 'OffRoad')]
def pool(rows, prefix):
    rs = [r for r in rows if r['condition'] == 'training town' and r['driver'].startswith(prefix)]
    km = sum(r['pooled']['km'] for r in rs)
    inf = [i for r in rs for e in r['episodes'] for i in e['infractions']]
    return km, [sum(1 for i in inf if f(i)) for _, f in KINDS], len(rs)
def cdf(n, lam):
    return sum(math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) for k in range(n + 1)) if lam > 0 else 1.0
def solve(n, t):
    lo, hi = 0.0, 1.0 + n
    while cdf(n, hi) > t: hi *= 2
    for _ in range(200):
        m = (lo + hi) / 2
        lo, hi = (m, hi) if cdf(n, m) > t else (lo, m)
    return lo
def interval(km, n):
    lo = solve(n - 1, 0.975) if n else 0.0
    hi = solve(n, 0.025)
    return km / hi, (km / lo if lo else math.inf)
def p_below(na, kma, nb, kmb):
    # Each binomial term in log space (lgamma): exact enough, and no overflow at thousands.
    n, p = na + nb, kma / (kma + kmb)
    lc = lambda j: math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
    return min(1.0, sum(math.exp(lc(j) + j * math.log(p) + (n - j) * math.log1p(-p)) for j in range(na + 1)))
def table(drivers, floor):
    """drivers: (name, rows, prefix) triples, one of them named floor; a markdown table."""
    out = ['| driver | rows | km | ' + ' | '.join(f'km / {k}' for k, _ in KINDS) + ' |',
           '|---|---:|---:|' + '---|' * len(KINDS)]
    fkm, fn, _ = next(pool(rows, prefix) for name, rows, prefix in drivers if name == floor)
    for name, rows, prefix in drivers:
        km, ns, nrows = pool(rows, prefix)
        cells = []
        for n, nf in zip(ns, fn):
            lo, hi = interval(km, n)
            hi_s = '∞' if math.isinf(hi) else f'{hi:.2f}'
            c = f'{km / n:.2f} ({n}) [{lo:.2f}–{hi_s}]' if n else f'> {km:.2f} (0) [{lo:.2f}–∞]'
            if name != floor:
                p = p_below(n, km, nf, fkm)
                c += ' p<0.001' if p < 1e-3 else f' p={p:.3f}'
            cells.append(c)
        out.append(f'| {name} | {nrows} | {km:.2f} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)
if __name__ == '__main__':
    rows = load(sys.argv[1:])
    floor = 'random policy without brake'
    drivers = [(floor, floor), ('Autopilot (privileged)', 'Autopilot (privileged)'),
               ('labels agent, 13 imitation segments (section 17)', 'agent: drive-labels-dagger-aggregate'),
               ('labels agent, 20 imitation segments (section 18)', 'agent: drive-labels-dagger-long'),
               ('latent agent, 13 imitation segments (section 17; 2 seeds × 100 episodes)', 'agent: drive-enet-dagger-aggregate')]
    print(table([(name, rows, prefix) for name, prefix in drivers], floor))
