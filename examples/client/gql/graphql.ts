/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type KpiOverviewQueryVariables = Exact<{ [key: string]: never; }>;


export type KpiOverviewQuery = { kpis: Array<{ code: string, name: string, unit: string | null, window: string, current: { value: number | null, at: string } | null }> };

export type KpiUpdatesSubscriptionVariables = Exact<{
  codes: Array<string | number> | string | number;
  after?: string | null | undefined;
}>;


export type KpiUpdatesSubscription = { kpiUpdated: { value: number | null, at: string, cursor: string, kpi: { code: string, name: string, unit: string | null } } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const KpiOverviewDocument = new TypedDocumentString(`
    query KpiOverview {
  kpis {
    code
    name
    unit
    window
    current {
      value
      at
    }
  }
}
    `, {"hash":"aade9dab7c83ddfdc0ffc4b7630d7f1ba5674abf3860e18363cce9593104c47c"}) as unknown as TypedDocumentString<KpiOverviewQuery, KpiOverviewQueryVariables>;
export const KpiUpdatesDocument = new TypedDocumentString(`
    subscription KpiUpdates($codes: [ID!]!, $after: String) {
  kpiUpdated(codes: $codes, after: $after) {
    value
    at
    cursor
    kpi {
      code
      name
      unit
    }
  }
}
    `, {"hash":"4c3ccac102039f0ccc58a3b4e5ec87811af3609274c6d7df84da27829e7ba7bd"}) as unknown as TypedDocumentString<KpiUpdatesSubscription, KpiUpdatesSubscriptionVariables>;