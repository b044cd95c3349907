// The compatibility rule for the client schema: a change between the schema clients were last given
// (schema.published.graphql) and schema.graphql may not break them unless what it removes or changes was
// deprecated in the published schema first. @graphql-inspector/core finds the changes and their
// criticality; this module only decides which breaking ones were announced by a deprecation.
import { CriticalityLevel, diff, type Change } from '@graphql-inspector/core';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';

/** The breaking changes from `published` to `current` that no deprecation in `published` announced. */
export async function unannouncedBreakingChanges(
  published: GraphQLSchema,
  current: GraphQLSchema,
): Promise<Change[]> {
  const changes = await diff(published, current);
  return changes.filter(
    (change) => change.criticality.level === CriticalityLevel.Breaking && !announced(published, change),
  );
}

/**
 * Whether the schema element a breaking change touches was deprecated: the field, enum value or input
 * field at its path, or the argument at its path or the field that argument belongs to. A removed type
 * counts as announced when every field, argument and input field that referred to it was deprecated.
 */
function announced(published: GraphQLSchema, change: Change): boolean {
  const [typeName, memberName, argumentName] = (change.path ?? '').split('.');
  const type = typeName ? published.getType(typeName) : undefined;
  if (!type) return false;
  if (memberName === undefined)
    return change.type === 'TYPE_REMOVED' && onlyDeprecatedReferences(published, type);
  if (isEnumType(type)) return deprecated(type.getValue(memberName));
  if (isInputObjectType(type)) return deprecated(type.getFields()[memberName]);
  if (!isObjectType(type) && !isInterfaceType(type)) return false;
  const field = type.getFields()[memberName];
  if (deprecated(field)) return true;
  return argumentName !== undefined && deprecated(field?.args.find((arg) => arg.name === argumentName));
}

function deprecated(element: { deprecationReason?: string | null | undefined } | undefined | null): boolean {
  return element?.deprecationReason != null;
}

/** Whether every reference to `target` in the schema is a deprecated field, argument or input field. */
function onlyDeprecatedReferences(schema: GraphQLSchema, target: GraphQLNamedType): boolean {
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  if (roots.includes(target as never)) return false;
  const references: Array<GraphQLField<unknown, unknown> | GraphQLArgument | GraphQLInputField> = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (getNamedType(field.type) === target) references.push(field);
        // An argument of a deprecated field goes with its field.
        if (!deprecated(field))
          references.push(...field.args.filter((arg) => getNamedType(arg.type) === target));
      }
      if (type.getInterfaces().includes(target as never)) return false;
    } else if (isInputObjectType(type)) {
      references.push(
        ...Object.values(type.getFields()).filter((field) => getNamedType(field.type) === target),
      );
    }
  }
  return references.every(deprecated);
}
