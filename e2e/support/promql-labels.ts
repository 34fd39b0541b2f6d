import { parser } from "@prometheus-io/lezer-promql";
import type { Registry } from "prom-client";

// Which labels each PromQL expression of deploy/ can rely on. Expressions are parsed with the
// Prometheus project's own grammar (@prometheus-io/lezer-promql) and the label set of every
// sub-expression is followed from its selectors up: a grouping (`by`, `on`) or a selector's
// matcher that names a label its series do not carry, or a one-to-one operation between vectors
// of different label sets, selects nothing at run time, silently. promtool parses the same
// expressions but knows nothing of the metrics.

type Node = ReturnType<typeof parser.parse>["topNode"];

/** The label names of each series name: a metric's own labels, plus what every target carries. */
export type LabelCatalog = ReadonlyMap<string, ReadonlySet<string>>;

interface MetricDeclaration {
  name: string;
  type: string;
  labelNames?: string[];
}

/** What a sub-expression yields: a scalar, or an instant vector whose series carry these labels. */
type Shape = { scalar: true } | { scalar: false; labels: Set<string> };
const SCALAR: Shape = { scalar: true };
const vector = (labels: Iterable<string>): Shape => ({ scalar: false, labels: new Set(labels) });

/** Functions that yield a scalar. */
const SCALAR_FUNCTIONS = new Set(["time", "scalar", "pi"]);

/**
 * The label names every series of the registries' metrics carries (prom-client's declared label
 * names, `le` on histogram buckets, `quantile` on summaries), plus `targetLabels`, which every
 * scrape target carries; `up` carries those alone.
 */
export function labelCatalog(registries: Registry[], targetLabels: Iterable<string>): LabelCatalog {
  const target = [...targetLabels];
  const catalog = new Map<string, Set<string>>([["up", new Set(target)]]);
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      // prom-client keeps each metric's declared label names on it, though its types do not say so.
      const { name, type, labelNames = [] } = metric as unknown as MetricDeclaration;
      const own = [...labelNames, ...target];
      catalog.set(name, new Set(own));
      if (type === "histogram") {
        catalog.set(`${name}_bucket`, new Set([...own, "le"]));
        for (const s of ["_sum", "_count"]) catalog.set(name + s, new Set(own));
      }
      if (type === "summary") {
        catalog.set(name, new Set([...own, "quantile"]));
        for (const s of ["_sum", "_count"]) catalog.set(name + s, new Set(own));
      }
    }
  }
  return catalog;
}

/** What is wrong with one expression's labels, one line each (empty: nothing). */
export function labelFaults(expr: string, catalog: LabelCatalog): string[] {
  const faults: string[] = [];
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) faults.push(`does not parse at ${n.from}`);
    },
  });
  if (faults.length === 0) shapeOf(tree.topNode, { catalog, faults, expr });
  return faults;
}

interface Walk {
  catalog: LabelCatalog;
  faults: string[];
  expr: string;
}

function children(node: Node): Node[] {
  const all: Node[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) all.push(c);
  return all;
}

const text = (node: Node, walk: Walk): string => walk.expr.slice(node.from, node.to);
function labelNames(node: Node | null | undefined, walk: Walk): string[] {
  return (node?.getChildren("LabelName") ?? []).map((l) => text(l, walk));
}

function shapeOf(node: Node, walk: Walk): Shape {
  switch (node.name) {
    case "PromQL":
    case "ParenExpr":
    case "UnaryExpr":
    case "StepInvariantExpr":
      return shapeOf(children(node).at(-1)!, walk);
    case "NumberDurationLiteral":
    case "StringLiteral":
      return SCALAR;
    case "MatrixSelector":
    case "SubqueryExpr":
      return shapeOf(children(node)[0]!, walk);
    case "VectorSelector":
      return selectorShape(node, walk);
    case "FunctionCall":
      return functionShape(node, walk);
    case "AggregateExpr":
      return aggregateShape(node, walk);
    case "BinaryExpr":
      return binaryShape(node, walk);
    default:
      walk.faults.push(`no rule for ${node.name} (${text(node, walk)})`);
      return vector([]);
  }
}

/** A selector's series: the metrics it names (by name, or alternated in `__name__`), and their labels in common. */
function selectorShape(node: Node, walk: Walk): Shape {
  const names: string[] = [];
  const identifier = node.getChild("Identifier");
  if (identifier) names.push(text(identifier, walk));
  const matchers = node.getChild("LabelMatchers")?.getChildren("UnquotedLabelMatcher") ?? [];
  const matched: string[] = [];
  for (const m of matchers) {
    const label = text(m.getChild("LabelName")!, walk);
    const value = JSON.parse(text(m.getChild("StringLiteral")!, walk)) as string;
    if (label === "__name__") names.push(...value.split("|"));
    else matched.push(label);
  }
  const known = names.filter((n) => {
    if (walk.catalog.has(n)) return true;
    walk.faults.push(`selects ${n}, which no process exports`);
    return false;
  });
  const [first, ...rest] = known.map((n) => walk.catalog.get(n)!);
  const labels = new Set([...(first ?? [])].filter((l) => rest.every((r) => r.has(l))));
  for (const label of matched.filter((l) => !labels.has(l))) {
    walk.faults.push(`matches on "${label}", which ${names.join(" and ")} do not carry`);
  }
  return vector(labels);
}

function functionShape(node: Node, walk: Walk): Shape {
  const name = text(node.getChild("FunctionIdentifier")!, walk);
  const args = children(node.getChild("FunctionCallBody")!).map((a) => shapeOf(a, walk));
  if (SCALAR_FUNCTIONS.has(name)) return SCALAR;
  if (name === "vector" || name === "absent" || name === "absent_over_time") return vector([]);
  const input = args.find((a): a is Extract<Shape, { scalar: false }> => !a.scalar);
  if (!input) return SCALAR;
  if (name === "histogram_quantile") {
    if (!input.labels.has("le")) walk.faults.push("histogram_quantile over series without `le`");
    return vector([...input.labels].filter((l) => l !== "le"));
  }
  return vector(input.labels);
}

/** `sum by (a, b) (x)`: the labels grouped by, each of which x's series must carry. */
function aggregateShape(node: Node, walk: Walk): Shape {
  const op = text(node.getChild("AggregateOp")!, walk);
  const args = children(node.getChild("FunctionCallBody")!).map((a) => shapeOf(a, walk));
  const inner = args.at(-1);
  if (!inner || inner.scalar) {
    walk.faults.push(`${op} over a scalar`);
    return vector([]);
  }
  const modifier = node.getChild("AggregateModifier");
  const grouped = labelNames(modifier?.getChild("GroupingLabels") ?? undefined, walk);
  if (!modifier) return vector(op === "topk" || op === "bottomk" ? inner.labels : []);
  if (modifier.getChild("Without")) return vector([...inner.labels].filter((l) => !grouped.includes(l)));
  for (const label of grouped.filter((l) => !inner.labels.has(l))) {
    walk.faults.push(`${op} by (${grouped.join(", ")}): its series do not carry "${label}"`);
  }
  return vector(grouped);
}

/** Vector with vector: `on (…)` labels both sides carry; without it, both sides alike. */
function binaryShape(node: Node, walk: Walk): Shape {
  const parts = children(node);
  const left = shapeOf(parts[0]!, walk);
  const right = shapeOf(parts.at(-1)!, walk);
  if (left.scalar) return right;
  if (right.scalar) return left;
  const op = parts[1]!;
  const matching = node.getChild("MatchingModifierClause");
  if (!matching) {
    // `or` joins series of any labels; everything else matches series one to one on all their labels.
    if (op.name === "Or") return vector([...left.labels].filter((l) => right.labels.has(l)));
    const same = left.labels.size === right.labels.size && [...left.labels].every((l) => right.labels.has(l));
    const [l, r] = [left, right].map((side) => `{${[...side.labels].join(", ")}}`);
    if (!same) walk.faults.push(`${text(op, walk)} between series labelled ${l} and ${r}: none match`);
    return left;
  }
  const [on, ...include] = matching.getChildren("GroupingLabels").map((g) => labelNames(g, walk));
  if (matching.getChild("On")) {
    const missing = (on ?? []).filter((label) => !left.labels.has(label) || !right.labels.has(label));
    for (const label of missing) walk.faults.push(`on (${on!.join(", ")}): both sides must carry "${label}"`);
  }
  const grouped = matching.getChild("GroupRight") ? right : left;
  return vector([...grouped.labels, ...include.flat()]);
}
