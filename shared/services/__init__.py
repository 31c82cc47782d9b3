"""Use cases: each public function is one thing a timer or an HTTP route asks the system to do."""
