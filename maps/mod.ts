// Lookup tables: the `type:name` registry, the table interface, the search
// orders of access(5), virtual(5), canonical(5), aliases(5), transport(5) and
// relocated(5), and the alias database rebuild that newaliases runs.

export * from "./dict.ts";
export {
  findMapType,
  type MapType,
  mapTypeNames,
  mapTypes,
  openMap,
  requireMapType,
  splitMapSpec,
} from "./registry.ts";
export { logicalLines, parseMapSource, splitKeyValue } from "./source.ts";
export * from "./search.ts";
export {
  type AliasConfig,
  buildAliasTable,
  canonicalAliasValue,
  parseAliases,
  rebuildAliasDatabases,
} from "./aliases.ts";
