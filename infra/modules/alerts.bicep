// The seed's alerts, as log search alerts on Application Insights (the classic table names: requests,
// dependencies, exceptions, traces, customMetrics), each sent to one action group.
//   error rate > 5%, LLM failures (HOLD fallbacks), SQL connection failures, function failures, P95 latency > 5 s
// Every query returns rows only when the condition holds; the rule fires when it returns any.
// docs/operations.md says what to do for each.

param location string
param tags object
param appInsightsId string
param nameSuffix string
@description('E-mail address that receives the alerts; empty for an action group without receivers.')
param alertEmail string = ''
@description('How often each rule runs. PT15M is the cheapest log alert; PT5M pages sooner for about three times the price.')
@allowed([
  'PT5M'
  'PT10M'
  'PT15M'
])
param evaluationFrequency string = 'PT15M'

var emailReceivers = empty(alertEmail) ? [] : [
  {
    name: 'operator'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-trading-race-${nameSuffix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'tradingrace'
    enabled: true
    emailReceivers: emailReceivers
  }
}

resource errorRate 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-error-rate-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Error rate above 5%'
    description: 'More than 5% of requests and function invocations failed in the last hour (at least 10 of them).'
    severity: 2
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: 'PT1H'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: '''
requests
| summarize total = count(), failed = countif(success == false)
| where total >= 10
| extend errorRatePercent = 100.0 * failed / total
| where errorRatePercent > 5
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource llmFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-llm-failures-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Model failures: 3+ HOLD fallbacks in an hour'
    description: 'Agents fell back to HOLD because their model call failed (LLM provider errors, timeouts, open breakers, ML service). Counted from the race.holds metric (reason other than voluntary) or the cycle\'s "falls back to HOLD" log line, whichever is higher.'
    severity: 2
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: 'PT1H'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: '''
let fromMetric = customMetrics
    | where name == "race.holds" and tostring(customDimensions["reason"]) != "voluntary"
    | summarize n = sum(valueSum);
let fromLogs = traces
    | where message has "falls back to HOLD"
    | summarize n = todouble(count());
union fromMetric, fromLogs
| summarize fallbacks = max(n)
| where fallbacks >= 3
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource sqlConnectionFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-sql-connection-failures-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Azure SQL connection failures'
    description: 'The app could not connect to Azure SQL (ODBC 08001/08S01/HYT00, Azure SQL 40613/40197/40501, login timeouts) or a SQL dependency call failed.'
    severity: 1
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: '''
union isfuzzy=true
    (dependencies | where success == false and (type has "SQL" or type has "mssql" or target has "database.windows.net")),
    (exceptions | where outerMessage has_any ("08001", "08S01", "HYT00", "40613", "40197", "40501", "Login timeout expired")),
    (traces | where severityLevel >= 3 and message has_any ("08001", "08S01", "HYT00", "40613", "40197", "40501", "Login timeout expired"))
| summarize failures = count()
| where failures > 0
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource functionFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-function-failures-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Function failures'
    description: 'A timer invocation (market data, agents, equity) failed, or the HTTP API answered 5xx.'
    severity: 1
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: '''
requests
| where success == false
| where operation_Name in ("market_data_timer", "run_agents_timer", "equity_snapshot_timer") or toint(resultCode) >= 500
| summarize failures = count() by operation_Name
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource p95Latency 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-p95-latency-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'API P95 latency above 5 s'
    description: 'The 95th percentile of HTTP API request duration over the last hour is above 5 seconds (at least 10 requests; timers and the dashboard\'s long polls of /api/race excluded, they run long by design).'
    severity: 3
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: 'PT1H'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: '''
requests
| where operation_Name !in ("market_data_timer", "run_agents_timer", "equity_snapshot_timer")
| where url !contains "/api/race?wait="
| summarize p95Ms = percentile(duration, 95), n = count()
| where n >= 10 and p95Ms > 5000
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertNames array = [
  errorRate.name
  llmFailures.name
  sqlConnectionFailures.name
  functionFailures.name
  p95Latency.name
]
