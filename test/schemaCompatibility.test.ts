// The client schema as a promise to clients: schema.graphql may grow, but nothing a client of the last
// published schema (schema.published.graphql, written by `node scripts/publishSchema.ts` on release) can
// use may be removed or changed unless it was deprecated there first. And every element of it is
// described, since the descriptions reach generated code and IDEs.
import { readFileSync } from 'node:fs';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  type GraphQLSchema,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { unannouncedBreakingChanges } from '../scripts/schemaCompatibility.ts';

const schemaFile = (path: string) => buildSchema(readFileSync(path, 'utf8'));

/** The messages of the unannounced breaking changes from one SDL to the other. */
async function breaking(published: string, current: string): Promise<string[]> {
  const changes = await unannouncedBreakingChanges(buildSchema(published), buildSchema(current));
  return changes.map((change) => change.message);
}

/** Schema coordinates (Type.field(arg:), Enum.VALUE, ...) of every element without a description. */
function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const check = (coordinate: string, description: string | null | undefined) => {
    if (!description?.trim()) missing.push(coordinate);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || (isScalarType(type) && !type.astNode)) continue;
    check(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        check(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args) check(`${type.name}.${field.name}(${arg.name}:)`, arg.description);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields()))
        check(`${type.name}.${field.name}`, field.description);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
  }
  return missing;
}

describe('schema.graphql against the schema clients were last given', () => {
  it('breaks no client of schema.published.graphql (deprecate first, remove in a later release)', async () => {
    const changes = await unannouncedBreakingChanges(
      schemaFile('schema.published.graphql'),
      schemaFile('schema.graphql'),
    );
    expect(changes.map((change) => change.message)).toEqual([]);
  });

  it('describes every type, field, argument, enum value and input field', () => {
    expect(undescribed(schemaFile('schema.graphql'))).toEqual([]);
  });
});

describe('the compatibility rule', () => {
  const base = /* GraphQL */ `
    type Query {
      kpi(code: ID!, window: String): Kpi
      kpis: [Kpi!]!
    }
    type Kpi {
      code: ID!
      name: String!
      unit: String
    }
    enum Unit {
      EUR
      USD
    }
    input Filter {
      field: String!
      unit: Unit
    }
    type Mutation {
      setFilter(filter: Filter): Boolean
    }
  `;

  it('passes an unchanged schema', async () => {
    expect(await breaking(base, base)).toEqual([]);
  });

  it('passes an added field, argument, enum value, input field and type (safe or dangerous, not breaking)', async () => {
    const grown = base
      .replace('unit: String\n', 'unit: String\n      description: String\n')
      .replace('kpis: [Kpi!]!', 'kpis(first: Int): [Kpi!]!')
      .replace('USD\n', 'USD\n      GBP\n')
      .replace('unit: Unit\n', 'unit: Unit\n      note: String\n')
      .concat('\ntype Report { id: ID! }\n');
    expect(grown).not.toBe(base);
    expect(await breaking(base, grown)).toEqual([]);
  });

  it('fails a removed field', async () => {
    const current = base.replace('unit: String\n', '');
    expect(await breaking(base, current)).toEqual(["Field 'unit' was removed from object type 'Kpi'"]);
  });

  it('passes a removed field that was deprecated in the published schema', async () => {
    const published = base.replace('unit: String\n', 'unit: String @deprecated(reason: "use name")\n');
    expect(await breaking(published, base.replace('unit: String\n', ''))).toEqual([]);
  });

  it('fails a changed argument type', async () => {
    const current = base.replace('window: String', 'window: Int');
    expect(await breaking(base, current)).toEqual([expect.stringMatching(/window.*Query\.kpi.*String.*Int/)]);
  });

  it('passes a changed argument type when the argument or its field was deprecated', async () => {
    const current = base.replace('window: String', 'window: Int');
    const argumentDeprecated = base.replace('window: String', 'window: String @deprecated(reason: "x")');
    const fieldDeprecated = base.replace(
      'Kpi\n      kpis',
      'Kpi @deprecated(reason: "use kpis")\n      kpis',
    );
    expect(fieldDeprecated).not.toBe(base);
    expect(
      await breaking(
        argumentDeprecated,
        current.replace('window: Int', 'window: Int @deprecated(reason: "x")'),
      ),
    ).toEqual([]);
    expect(
      await breaking(
        fieldDeprecated,
        current.replace('Kpi\n      kpis', 'Kpi @deprecated(reason: "use kpis")\n      kpis'),
      ),
    ).toEqual([]);
  });

  it('fails a nullable argument made required, and a field made nullable', async () => {
    const current = base
      .replace('window: String', 'window: String!')
      .replace('name: String!', 'name: String');
    expect(await breaking(base, current)).toHaveLength(2);
  });

  it('fails a removed enum value or input field, unless deprecated first', async () => {
    const current = base.replace('USD\n', '').replace('field: String!\n', '');
    expect(await breaking(base, current)).toHaveLength(2);
    const published = base
      .replace('USD\n', 'USD @deprecated(reason: "EUR only")\n')
      .replace('field: String!\n', 'field: String! @deprecated(reason: "by unit")\n');
    expect(await breaking(published, current)).toEqual([]);
  });

  it('fails a removed type unless every field and argument that used it was deprecated', async () => {
    const withoutFilter = base
      .replace(/input Filter \{[^}]*\}/, '')
      .replace('setFilter(filter: Filter): Boolean', 'other: Boolean');
    const published = base.replace(
      'setFilter(filter: Filter): Boolean',
      'setFilter(filter: Filter): Boolean @deprecated(reason: "gone")\n      other: Boolean',
    );
    expect(await breaking(published, withoutFilter)).toEqual([]);
    const stillUsed = base.replace(
      'setFilter(filter: Filter): Boolean',
      'setFilter(filter: Filter): Boolean\n      other: Boolean',
    );
    expect(await breaking(stillUsed, withoutFilter)).toEqual([
      expect.stringMatching(/Filter/),
      expect.stringMatching(/setFilter/),
    ]);
  });
});
