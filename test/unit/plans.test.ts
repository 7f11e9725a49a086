import {
  DEFAULT_PLANS,
  PlanCatalogue,
  PlanCatalogueError,
  UnknownPlanError,
  loadPlanCatalogue,
  parseQuantity,
  validatePlanCatalogue,
  type Plan,
} from '../../src/plans';

/** A deep, mutable copy of a default plan, to be broken one field at a time. */
function plan(id = 'pro'): Plan {
  const found = DEFAULT_PLANS.find((p) => p.id === id);
  if (!found) throw new Error(`test setup: no default plan ${id}`);
  return structuredClone(found);
}

/** Runs validation and returns the error, failing the test if none is thrown. */
function catalogueError(input: unknown): PlanCatalogueError {
  try {
    validatePlanCatalogue(input);
  } catch (err) {
    expect(err).toBeInstanceOf(PlanCatalogueError);
    return err as PlanCatalogueError;
  }
  throw new Error('expected validatePlanCatalogue to throw');
}

describe('parseQuantity', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['1', 1],
    ['2.5', 2.5],
    ['.5', 0.5],
    ['1.', 1],
    ['500m', 0.5],
    ['100m', 0.1],
    ['1500m', 1.5],
    ['250u', 0.00025],
    ['5n', 5e-9],
    ['100k', 100_000],
    ['1M', 1_000_000],
    ['1G', 1_000_000_000],
    ['2T', 2e12],
    ['1P', 1e15],
    ['1E', 1e18],
    ['1Ki', 1024],
    ['128Mi', 128 * 1024 ** 2],
    ['1Gi', 1024 ** 3],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['1Ti', 1024 ** 4],
    ['1Pi', 1024 ** 5],
    ['1Ei', 1024 ** 6],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1e-3', 0.001],
    ['1e+2', 100],
    ['2.5e2', 250],
    ['+1', 1],
    ['-1', -1],
  ])('parses %s as %d', (input, expected) => {
    expect(parseQuantity(input)).toBe(expected);
  });

  it.each(['', ' ', '1 Gi', 'abc', '1gi', '1GB', '1mi', 'Gi', '1..2', '1.2.3', '1e', '1e1.5', '--1', 'm', '0x10', '1Ki1', ' 1', '1 '])(
    'rejects %j with a message naming the input',
    (input) => {
      expect(() => parseQuantity(input)).toThrow(`Invalid Kubernetes quantity ${JSON.stringify(input)}`);
    },
  );

  it('rejects values too large to represent', () => {
    expect(() => parseQuantity('1e400')).toThrow(/out of range/);
    expect(() => parseQuantity('1e300Ki')).toThrow(/Invalid Kubernetes quantity/);
  });

  it('rejects non-strings arriving from untyped JSON', () => {
    expect(() => parseQuantity(5 as unknown as string)).toThrow(/not a string/);
  });
});

describe('DEFAULT_PLANS', () => {
  it('is a valid catalogue of starter, pro and enterprise', () => {
    const plans = validatePlanCatalogue(DEFAULT_PLANS);
    expect(plans.map((p) => p.id)).toEqual(['starter', 'pro', 'enterprise']);
    expect(plans).toEqual(DEFAULT_PLANS);
  });

  it('lets starter reach nothing outside the cluster, and pro and enterprise the internet', () => {
    expect(DEFAULT_PLANS.map((p) => [p.id, p.egress])).toEqual([
      ['starter', 'none'],
      ['pro', 'internet'],
      ['enterprise', 'internet'],
    ]);
  });

  it('grows from plan to plan', () => {
    const [starter, pro, enterprise] = DEFAULT_PLANS;
    const sizes = [starter!, pro!, enterprise!].map((p) => ({
      cpu: parseQuantity(p.quota.limitsCpu),
      memory: parseQuantity(p.quota.limitsMemory),
      storage: parseQuantity(p.quota.requestsStorage),
      pods: p.quota.pods,
    }));
    for (let i = 1; i < sizes.length; i++) {
      expect(sizes[i]!.cpu).toBeGreaterThan(sizes[i - 1]!.cpu);
      expect(sizes[i]!.memory).toBeGreaterThan(sizes[i - 1]!.memory);
      expect(sizes[i]!.storage).toBeGreaterThan(sizes[i - 1]!.storage);
      expect(sizes[i]!.pods).toBeGreaterThan(sizes[i - 1]!.pods);
    }
  });

  it('sizes starter as documented', () => {
    const starter = DEFAULT_PLANS[0]!;
    expect(starter.quota).toMatchObject({ limitsCpu: '1', limitsMemory: '1Gi', requestsStorage: '5Gi', pods: 10 });
    expect(starter.app).toEqual({
      replicas: 1,
      requestsCpu: '50m',
      requestsMemory: '64Mi',
      limitsCpu: '200m',
      limitsMemory: '128Mi',
    });
  });

  it('leaves quota room for one surge pod during a rolling update', () => {
    for (const p of DEFAULT_PLANS) {
      const surge = p.app.replicas + 1;
      expect(surge * parseQuantity(p.app.limitsCpu)).toBeLessThanOrEqual(parseQuantity(p.quota.limitsCpu));
      expect(surge * parseQuantity(p.app.limitsMemory)).toBeLessThanOrEqual(parseQuantity(p.quota.limitsMemory));
      expect(surge).toBeLessThanOrEqual(p.quota.pods);
    }
  });

  it('cannot be mutated by callers', () => {
    const starter = DEFAULT_PLANS[0]!;
    expect(() => {
      starter.quota.pods = 1000;
    }).toThrow(TypeError);
    expect(starter.quota.pods).toBe(10);
  });
});

describe('validatePlanCatalogue', () => {
  it('returns the plans, typed, when they are valid', () => {
    const custom = plan('starter');
    custom.id = 'tiny';
    expect(validatePlanCatalogue([custom])).toEqual([custom]);
  });

  it('rejects a catalogue that is not an array', () => {
    expect(catalogueError({ starter: plan('starter') }).message).toMatch(/must be a JSON array of plans, got object/);
    expect(catalogueError(null).message).toMatch(/got null/);
  });

  it('rejects an empty catalogue', () => {
    expect(catalogueError([]).message).toMatch(/at least one plan/);
  });

  it('rejects duplicate ids, naming both positions', () => {
    const err = catalogueError([plan('starter'), plan('pro'), plan('pro')]);
    expect(err.problems).toEqual(['plan "pro": id is not unique (plans[1] and plans[2] both use it)']);
  });

  it.each(['Pro', 'pro_plan', '-pro', 'pro-', 'pro plan', '', 'a'.repeat(31)])('rejects the id %j', (id) => {
    const bad = plan();
    bad.id = id;
    const err = catalogueError([bad]);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/: id: must be a DNS-1123 label .* at most 30 characters$/);
  });

  it('accepts a 30-character id', () => {
    const ok = plan();
    ok.id = 'a'.repeat(30);
    expect(validatePlanCatalogue([ok])[0]!.id).toBe(ok.id);
  });

  it('rejects a quantity that does not parse', () => {
    const bad = plan();
    bad.quota.limitsCpu = 'lots';
    expect(catalogueError([bad]).problems).toEqual([
      expect.stringMatching(/^plan "pro": quota\.limitsCpu: Invalid Kubernetes quantity "lots"/),
    ]);
  });

  it('rejects a negative quantity', () => {
    const bad = plan();
    bad.limitRange.maxMemory = '-1Gi';
    expect(catalogueError([bad]).problems).toEqual(['plan "pro": limitRange.maxMemory: must not be negative, got "-1Gi"']);
  });

  it('rejects a quantity given as a number', () => {
    const bad = plan() as unknown as { quota: Record<string, unknown> };
    bad.quota.requestsStorage = 5;
    expect(catalogueError([bad]).message).toMatch(/plan "pro": quota\.requestsStorage: .*expected string/);
  });

  it.each(['pods', 'services', 'secrets', 'configMaps', 'persistentVolumeClaims'] as const)(
    'rejects a negative or fractional quota.%s',
    (field) => {
      const negative = plan();
      negative.quota[field] = -1;
      expect(catalogueError([negative]).problems).toEqual([expect.stringMatching(new RegExp(`^plan "pro": quota\\.${field}: `))]);
      const fractional = plan();
      fractional.quota[field] = 1.5;
      expect(catalogueError([fractional]).problems).toEqual([
        expect.stringMatching(new RegExp(`^plan "pro": quota\\.${field}: .*int`)),
      ]);
    },
  );

  it('rejects a negative replica count', () => {
    const bad = plan();
    bad.app.replicas = -1;
    expect(catalogueError([bad]).problems).toEqual([expect.stringMatching(/^plan "pro": app\.replicas: /)]);
  });

  it('rejects missing and unknown fields, so typos in PLANS_JSON do not go unnoticed', () => {
    const bad = plan() as unknown as { quota: Record<string, unknown> };
    delete bad.quota.pods;
    bad.quota.pod = 10;
    const err = catalogueError([bad]);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^plan "pro": quota\.pods: /),
        expect.stringMatching(/^plan "pro": quota: .*"pod"/),
      ]),
    );
  });

  it('names a plan without a usable id by its position', () => {
    const bad = plan() as unknown as Record<string, unknown>;
    delete bad.id;
    expect(catalogueError([plan('starter'), bad]).problems).toEqual([expect.stringMatching(/^plans\[1\]: id: /)]);
    expect(catalogueError(['starter']).problems).toEqual([expect.stringMatching(/^plans\[0\]: .*expected object/)]);
  });

  it('gives a plan without egress none, and refuses an unknown egress', () => {
    const { egress: _egress, ...withoutEgress } = plan('pro');
    expect(validatePlanCatalogue([withoutEgress])[0]!.egress).toBe('none');
    expect(catalogueError([{ ...plan('pro'), egress: 'everything' }]).problems).toEqual([expect.stringMatching(/^plan "pro": egress: /)]);
  });

  it('rejects a blank display name', () => {
    const bad = plan();
    bad.displayName = '   ';
    expect(catalogueError([bad]).problems).toEqual([expect.stringMatching(/^plan "pro": displayName: /)]);
  });

  it('rejects defaultRequest > defaultLimit (cpu), with the message from the spec', () => {
    const bad = plan();
    bad.limitRange.defaultRequestCpu = '2';
    bad.limitRange.defaultLimitCpu = '1';
    expect(catalogueError([bad]).problems).toEqual([
      'plan "pro": limitRange.defaultRequestCpu (2) exceeds limitRange.defaultLimitCpu (1)',
    ]);
  });

  it('rejects defaultRequest > defaultLimit (memory), comparing across units', () => {
    const bad = plan();
    bad.limitRange.defaultRequestMemory = '1G';
    bad.limitRange.defaultLimitMemory = '512Mi';
    expect(catalogueError([bad]).problems).toEqual([
      'plan "pro": limitRange.defaultRequestMemory (1G) exceeds limitRange.defaultLimitMemory (512Mi)',
    ]);
  });

  it('rejects defaultLimit > max', () => {
    const bad = plan();
    bad.limitRange.defaultLimitCpu = '2500m';
    bad.limitRange.defaultLimitMemory = '5Gi';
    expect(catalogueError([bad]).problems).toEqual([
      'plan "pro": limitRange.defaultLimitCpu (2500m) exceeds limitRange.maxCpu (2)',
      'plan "pro": limitRange.defaultLimitMemory (5Gi) exceeds limitRange.maxMemory (4Gi)',
    ]);
  });

  it("rejects the app's requests above its limits", () => {
    const bad = plan();
    bad.app.replicas = 1; // so only the request/limit rule is broken, not the quota ones
    bad.app.requestsCpu = '1001m';
    bad.app.requestsMemory = '2Gi';
    expect(catalogueError([bad]).problems).toEqual([
      'plan "pro": app.requestsCpu (1001m) exceeds app.limitsCpu (1)',
      'plan "pro": app.requestsMemory (2Gi) exceeds app.limitsMemory (1Gi)',
    ]);
  });

  it("rejects the app's limits above the LimitRange max", () => {
    const bad = plan();
    bad.limitRange.maxCpu = '500m';
    bad.limitRange.defaultLimitCpu = '500m';
    expect(catalogueError([bad]).problems).toEqual(['plan "pro": app.limitsCpu (1) exceeds limitRange.maxCpu (500m)']);
  });

  it('rejects replicas x app limits above the quota limits', () => {
    const bad = plan();
    bad.app.replicas = 5; // 5 x 1 CPU > 4, 5 x 1Gi <= 8Gi
    expect(catalogueError([bad]).problems).toEqual(['plan "pro": app.replicas (5) x app.limitsCpu (1) exceeds quota.limitsCpu (4)']);

    const memory = plan();
    memory.quota.limitsMemory = '1536Mi'; // 2 x 1Gi > 1.5Gi
    expect(catalogueError([memory]).problems).toEqual([
      'plan "pro": app.replicas (2) x app.limitsMemory (1Gi) exceeds quota.limitsMemory (1536Mi)',
    ]);
  });

  it('rejects replicas x app requests above the quota requests', () => {
    const bad = plan();
    bad.quota.requestsCpu = '400m'; // 2 x 250m
    expect(catalogueError([bad]).problems).toEqual([
      'plan "pro": app.replicas (2) x app.requestsCpu (250m) exceeds quota.requestsCpu (400m)',
    ]);
  });

  it('compares replicas x limits exactly, without floating-point error', () => {
    // 3 x 0.1 is 0.30000000000000004 in floating point, which would wrongly exceed 300m.
    const exact = plan('starter');
    exact.app = { replicas: 3, requestsCpu: '100m', requestsMemory: '64Mi', limitsCpu: '100m', limitsMemory: '128Mi' };
    exact.quota.requestsCpu = '0.3';
    exact.quota.limitsCpu = '300m';
    exact.limitRange.maxCpu = '100m';
    exact.limitRange.defaultLimitCpu = '100m';
    expect(() => validatePlanCatalogue([exact])).not.toThrow();
  });

  it('rejects more replicas than the quota allows pods', () => {
    const bad = plan();
    bad.quota.pods = 1;
    expect(catalogueError([bad]).problems).toEqual(['plan "pro": app.replicas (2) exceeds quota.pods (1)']);
  });

  it('lists every problem across every plan in one error', () => {
    const a = plan('starter');
    a.quota.limitsCpu = 'x';
    const b = plan('pro');
    b.app.replicas = 100;
    const err = catalogueError([a, b, plan('pro')]);
    expect(err.name).toBe('PlanCatalogueError');
    expect(err.problems).toEqual([
      expect.stringMatching(/^plan "starter": quota\.limitsCpu: /),
      'plan "pro": app.replicas (100) x app.limitsCpu (1) exceeds quota.limitsCpu (4)',
      'plan "pro": app.replicas (100) x app.requestsCpu (250m) exceeds quota.requestsCpu (2)',
      'plan "pro": app.replicas (100) x app.limitsMemory (1Gi) exceeds quota.limitsMemory (8Gi)',
      'plan "pro": app.replicas (100) x app.requestsMemory (256Mi) exceeds quota.requestsMemory (4Gi)',
      'plan "pro": app.replicas (100) exceeds quota.pods (30)',
      'plan "pro": id is not unique (plans[1] and plans[2] both use it)',
    ]);
    expect(err.message).toMatch(/^Invalid plan catalogue \(7 problems\):\n {2}- plan "starter"/);
    for (const problem of err.problems) expect(err.message).toContain(`  - ${problem}`);
  });
});

describe('loadPlanCatalogue', () => {
  it('uses DEFAULT_PLANS when PLANS_JSON is not set', () => {
    const catalogue = loadPlanCatalogue();
    expect(catalogue).toBeInstanceOf(PlanCatalogue);
    expect(catalogue.ids()).toEqual(['starter', 'pro', 'enterprise']);
    expect(catalogue.get('pro')).toEqual(DEFAULT_PLANS[1]);
  });

  it('treats an empty or blank PLANS_JSON as not set', () => {
    expect(loadPlanCatalogue('').ids()).toEqual(['starter', 'pro', 'enterprise']);
    expect(loadPlanCatalogue('  \n').ids()).toEqual(['starter', 'pro', 'enterprise']);
  });

  it('parses and validates PLANS_JSON', () => {
    const custom = plan('starter');
    custom.id = 'hobby';
    const catalogue = loadPlanCatalogue(JSON.stringify([custom, plan('enterprise')]));
    expect(catalogue.ids()).toEqual(['hobby', 'enterprise']);
    expect(catalogue.get('hobby')).toEqual(custom);
    expect(() => catalogue.get('starter')).toThrow(UnknownPlanError);
  });

  it('reports invalid JSON clearly', () => {
    expect(() => loadPlanCatalogue('[{"id": "pro",')).toThrow(PlanCatalogueError);
    expect(() => loadPlanCatalogue('[{"id": "pro",')).toThrow(/PLANS_JSON is not valid JSON/);
  });

  it('reports an invalid catalogue in PLANS_JSON', () => {
    const bad = plan();
    bad.quota.pods = 0;
    expect(() => loadPlanCatalogue(JSON.stringify([bad]))).toThrow('plan "pro": app.replicas (2) exceeds quota.pods (0)');
  });

  it('returns plans that callers cannot mutate', () => {
    const catalogue = loadPlanCatalogue(JSON.stringify([plan()]));
    expect(() => {
      catalogue.get('pro').quota.pods = 1;
    }).toThrow(TypeError);
  });

  it('does not let callers change the catalogue through ids()', () => {
    const catalogue = loadPlanCatalogue();
    catalogue.ids().pop();
    expect(catalogue.ids()).toHaveLength(3);
  });
});

describe('UnknownPlanError', () => {
  it('lists the known plan ids', () => {
    const catalogue = loadPlanCatalogue();
    let error: unknown;
    try {
      catalogue.get('platinum');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UnknownPlanError);
    const unknownPlan = error as UnknownPlanError;
    expect(unknownPlan.name).toBe('UnknownPlanError');
    expect(unknownPlan.message).toBe('Unknown plan "platinum". Known plans: starter, pro, enterprise.');
    expect(unknownPlan.planId).toBe('platinum');
    expect(unknownPlan.knownPlanIds).toEqual(['starter', 'pro', 'enterprise']);
  });

  it('does not resolve inherited object properties as plans', () => {
    expect(() => loadPlanCatalogue().get('constructor')).toThrow(UnknownPlanError);
  });
});
