/** What the rest of saco needs to know about a policy, whichever language runs it. */
export interface PolicyDefinition<Name extends string = string> {
  /** The name in the native registry (native/policy_registry.cc) and on the CLI. */
  readonly name: Name;
  /** One line for `--help` and reports. */
  readonly description: string;
  /** Whether it acts from a trained model (`solve({ model })`). */
  readonly needsModel: boolean;
  /** Whether λ changes it, so the λ search runs; otherwise one budgeted rollout is the plan. */
  readonly searched: boolean;
  /**
   * Whether users influence each other's decisions (a bandit learning across users as the
   * rollout goes). Such a policy cannot be split into shards of users: the sharded solve
   * (src/cluster) refuses it. Absent: users are independent given λ.
   */
  readonly sharesStateAcrossUsers?: boolean;
  /**
   * What it must be fitted on before it can plan, beyond a CODT model (the forest's trees, the
   * bandit's prior from a training log): `saco solve --compare` leaves such policies out.
   */
  readonly fittedOn?: string;
}
