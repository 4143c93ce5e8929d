# The EKS cluster and its two managed node groups. Input names are those of
# terraform-aws-modules/eks v21 (name, kubernetes_version, endpoint_*, addons);
# v20 called them cluster_name, cluster_version, cluster_endpoint_*,
# cluster_addons and would reject this block.

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.24.2"

  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.intra_subnets

  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  # Access entries only, no aws-auth ConfigMap: who may use the cluster is
  # managed through the EKS API, below, and survives a broken ConfigMap.
  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = var.enable_cluster_creator_admin_permissions
  access_entries = {
    admin = {
      principal_arn = var.admin_role_arn
      policy_associations = {
        cluster_admin = {
          policy_arn = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = {
            type = "cluster"
          }
        }
      }
    }
  }

  # Workload AWS access uses EKS Pod Identity (identity.tf), not IRSA, so the
  # cluster needs no IAM OIDC provider.
  enable_irsa = false

  addons = {
    coredns    = {}
    kube-proxy = {}
    # Before the node groups, so the first nodes come up with networking and
    # pods can get Pod Identity credentials from the start.
    vpc-cni = {
      before_compute = true
    }
    eks-pod-identity-agent = {
      before_compute = true
    }
  }

  eks_managed_node_groups = {
    # Airflow, the aistack agents and the cluster add-ons.
    cpu = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.cpu_instance_types
      min_size       = var.cpu_node_count.min
      desired_size   = var.cpu_node_count.desired
      max_size       = var.cpu_node_count.max

      labels = {
        "ai.stack/node-role" = "cpu"
      }
    }

    # Ollama servers and model builds. The AL2023 NVIDIA AMI ships the driver
    # and the NVIDIA container toolkit, so the GPU Operator is installed with
    # its driver and toolkit disabled (see infra/README.md).
    gpu = {
      ami_type       = "AL2023_x86_64_NVIDIA"
      instance_types = var.gpu_instance_types
      capacity_type  = var.gpu_capacity_type
      min_size       = var.gpu_node_count.min
      desired_size   = var.gpu_node_count.desired
      max_size       = var.gpu_node_count.max

      # aistack's build pods select nvidia.com/gpu.present=true and tolerate
      # nvidia.com/gpu:NoSchedule (aistack/build_pod.py). The label is set
      # here rather than left to GPU feature discovery so a build can be
      # scheduled before the GPU Operator has labelled the node.
      labels = {
        "nvidia.com/gpu.present" = "true"
        "ai.stack/node-role"     = "gpu"
      }

      # Keeps everything that does not ask for a GPU off these expensive nodes.
      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "present"
          effect = "NO_SCHEDULE"
        }
      }

      # Base models and their layers are several GiB each; the default 20 GiB
      # root volume fills after a couple of pulls.
      block_device_mappings = {
        root = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.gpu_disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }
  }
}
