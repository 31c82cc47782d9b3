"""Wire contracts shared by the Functions app and the services it calls over HTTP.

Only pydantic and the standard library may be imported here: `ml_service` (a separate container with torch) and
the Functions app (never torch) both import this package, and nothing else from each other.
"""
