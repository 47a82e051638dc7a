package controlplane

import "context"

// startControllers starts the scheduler and controllers in this process.
func (s *Server) startControllers(ctx context.Context) error {
	return nil
}
